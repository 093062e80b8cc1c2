"""A page's cut through a run of equal scores (adapters/search/tantivy_shard.py): the documents
the tie key puts first, however long the run, whether the first fetch (FIRST_FETCH times the
page) reached the run's end or more had to be fetched."""

from __future__ import annotations

import pytest

import adapters.search.tantivy_shard as ts
from adapters.search.tantivy_shard import TantivyShard
from domain.search import Filters, IndexQuery, TextQuery, tie_key


def doc(pid: int, title: str) -> dict[str, object]:
    return {"product_id": pid, "version": 1, "external_id": f"E{pid}", "title": title,
            "description": "", "brand": "Acme", "brand_key": "acme", "category_ids": [1],
            "category_path": ["Things"], "price": 10.0, "rating_avg": 4.0, "rating_count": 1,
            "in_stock": True, "attributes": {}, "created_at": 1, "variant_ids": [pid]}


@pytest.fixture(scope="module")
def shard() -> TantivyShard:
    """20 oak lamps, then 250 lamps scoring alike, and chairs that do not match."""
    s = TantivyShard(None)
    s.apply([doc(p, "oak desk lamp") for p in range(1, 21)]
            + [doc(p, "desk lamp") for p in range(21, 271)]
            + [doc(p, "chair") for p in range(271, 301)])
    return s


@pytest.mark.parametrize("first_fetch", [ts.FIRST_FETCH, 1])
def test_pages_through_a_long_run_of_equal_scores(shard: TantivyShard, first_fetch: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ts, "FIRST_FETCH", first_fetch)
    text = TextQuery((("oak",), ("lamp",)), require_all=False)
    everything = shard.search(IndexQuery(text, Filters(), limit=1_000, facets=False)).hits
    assert len(everything) == 270 and len({h.score for h in everything}) == 2
    expected = [h.product_id for h in sorted(
        everything, key=lambda h: (-h.score, tie_key(f"E{h.product_id}", h.product_id)))]
    assert set(expected[:20]) == set(range(1, 21))  # the better score first
    for size in (5, 10, 40):  # a shard answers its best offset + limit (shards are merged)
        pages = [[h.product_id for h in shard.search(IndexQuery(
            text, Filters(), offset=o, limit=size, facets=False)).hits[o:]]
            for o in range(0, 120, size)]
        assert [p for page in pages for p in page] == expected[:len(pages) * size], size


def test_the_first_fetch_stays_within_the_tie_window() -> None:
    """A page deeper than MAX_TIES fetches what it did before (n + 1: its cut is never
    searched again either); others FIRST_FETCH times the page, up to MAX_TIES."""
    assert ts._first_fetch(20) == ts.FIRST_FETCH * 21
    assert ts._first_fetch(ts.MAX_TIES // 2) == ts.MAX_TIES
    assert ts._first_fetch(ts.MAX_TIES) == ts.MAX_TIES + 1
