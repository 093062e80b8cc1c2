"""domain.text_scoring: BM25 from fixed per-generation statistics, stored as quantized impacts."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from domain.text_scoring import (
    DEFAULT_AVG_LENGTH,
    IMPACT_MIN,
    IMPACT_STEP,
    K1,
    TermStats,
    idf,
    impact,
    impact_tokens,
    level,
    level_value,
    pivots,
    split_impact_token,
)


def test_idf_is_lucenes_and_falls_with_document_frequency() -> None:
    assert idf(10, 1000) == math.log(1 + (1000 - 10 + 0.5) / 10.5)
    assert idf(0, 1000) > idf(1, 1000) > idf(500, 1000) > idf(1000, 1000) > 0


def test_impact_saturates_with_tf_and_falls_with_length() -> None:
    assert impact(1, 10, 10.0) == 1.0  # at the pivot, tf 1: (k1 + 1) / (1 + k1)
    assert impact(2, 10, 10.0) > impact(1, 10, 10.0)
    assert impact(100, 10, 10.0) < K1 + 1
    assert impact(1, 5, 10.0) > impact(1, 10, 10.0) > impact(1, 40, 10.0)


@given(st.integers(1, 50), st.integers(1, 2000), st.floats(1.0, 500.0))
def test_a_level_stands_for_its_impact_within_half_a_step(tf: int, length: int,
                                                          avg: float) -> None:
    exact = impact(min(tf, length), length, avg)
    if exact <= IMPACT_MIN:  # negligible: the lowest level
        assert level(exact) == 0
        return
    stored = level_value(level(exact))
    assert abs(math.log(stored / exact)) <= math.log(IMPACT_STEP) / 2 + 1e-9


def test_impact_tokens_one_per_distinct_term() -> None:
    toks = impact_tokens(["red", "lamp", "red"], 3.0)
    assert [split_impact_token(t)[0] for t in toks] == ["red", "lamp"]
    red, lamp = (split_impact_token(t)[1] for t in toks)
    assert red > lamp  # tf 2 beats tf 1 in the same document


def test_pivots_average_each_field_and_keep_defaults_for_empty_ones() -> None:
    got = pivots([{"title": ["a", "b"], "description": []},
                  {"title": ["a", "b", "c", "d"], "description": []}])
    assert got["title"] == 3.0
    assert got["description"] == DEFAULT_AVG_LENGTH["description"]


def test_statistics_of_shards_add_up_and_survive_json() -> None:
    stats = TermStats.combine({"title": 4.0}, [
        (3, {"title": {"lamp": 2, "oak": 1}}),
        (2, {"title": {"lamp": 1}, "description": {"oak": 2}})])
    assert stats.documents == 5
    assert stats.df == {"title": {"lamp": 3, "oak": 1}, "description": {"oak": 2}}
    assert stats.idf("title", "oak") == idf(1, 5) > stats.idf("title", "lamp") == idf(3, 5)
    assert stats.idf("title", "never") == idf(0, 5)
    assert TermStats.from_json(stats.to_json()) == stats
    assert TermStats().idf("title", "lamp") == 1.0  # nothing counted yet
