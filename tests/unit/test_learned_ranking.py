"""Learned ranking without a cluster: the features, the index's signals, LambdaMART training
with query-grouped cross-validation, and model artifacts."""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import adapters.search.tantivy_shard as ts
from adapters.search.tantivy_shard import TantivyShard
from adapters.text_embedding import TextEmbedder, to_bytes
from domain.search import SIGNALS, Filters, IndexQuery, SignalRequest, TextQuery
from ranking.learned_features import (
    LEARNED_FEATURES,
    SIGNAL_NAMES,
    QueryContext,
    learned_matrix,
)
from ranking.lgbm import (
    GAIN_LEVELS,
    PARAMS,
    LgbmRanker,
    TrainingSet,
    average,
    compare,
    cross_validate,
    fold_of,
    grade,
    train,
)


def test_signal_names_are_the_index_signals() -> None:
    assert SIGNAL_NAMES == SIGNALS


def test_learned_matrix_columns_and_fallbacks() -> None:
    docs = [{"price": 10.0, "rating_avg": 4.5, "rating_count": 100, "in_stock": True,
             "created_at": 0, "seller_rating": 4.0},
            {"price": None, "rating_avg": None, "rating_count": None, "in_stock": False}]
    m = learned_matrix(QueryContext(words=2, brand_inferred=True), [4.0, 2.0],
                       [tuple(range(len(SIGNALS))), None], docs, 86_400.0)
    assert m.shape == (2, len(LEARNED_FEATURES)) and np.isfinite(m).all()
    col = {n: i for i, n in enumerate(LEARNED_FEATURES)}
    assert m[:, col["text_score_rel"]].tolist() == [1.0, 0.5]
    assert m[:, col["text_rank"]].tolist() == [0.0, 1.0]
    assert m[0, col["bm25_title"]] == 0.0 and m[0, col["category_match"]] == 9.0
    assert (m[1, col["bm25_title"]:col["category_match"] + 1] == 0).all()  # no signals: 0
    assert m[0, col["log_price"]] == pytest.approx(math.log(11.0))
    assert m[1, col["log_price"]] == 0.0 and m[1, col["stock"]] == 0.0
    assert (m[:, col["words"]] == 2).all() and (m[:, col["brand_inferred"]] == 1).all()
    with pytest.raises(ValueError):
        learned_matrix(QueryContext(), [1.0], [], docs, 0.0)


def doc(pid: int, title: str, brand: str, color: str, category: int) -> dict[str, object]:
    return {"product_id": pid, "version": 1, "external_id": f"E{pid}", "title": title,
            "description": "", "brand": brand, "brand_key": brand.casefold(),
            "category_ids": [category], "category_path": ["Things"], "price": 10.0,
            "rating_avg": 4.0, "rating_count": 1, "in_stock": True,
            "attributes": {"color": [color]}, "created_at": 1, "variant_ids": [pid]}


def test_the_index_computes_signals_of_its_hits() -> None:
    shard = TantivyShard(None)
    shard.apply([doc(1, "red oak desk lamp", "Acme", "red", 5),
                 doc(2, "desk organizer with lamp", "Globex", "black", 6),
                 doc(3, "oak chair", "Acme", "red", 5)])
    text = TextQuery((("desk",), ("lamp",)), require_all=False)
    res = shard.search(IndexQuery(text, limit=10, facets=False, signals=SignalRequest(
        brands=("acme",), colors=("red",), categories=(5,))))
    sig = {pid: dict(zip(SIGNALS, v, strict=True)) for pid, v in res.signals.items()}
    assert set(sig) == {1, 2}  # the hits only
    assert sig[1]["coverage"] == sig[2]["coverage"] == 1.0
    assert sig[1]["phrase_title"] == 1.0 and sig[2]["phrase_title"] == 0.0
    assert sig[1]["bm25_title"] > 0 and sig[1]["bm25_brand"] == 0.0
    assert (sig[1]["brand_match"], sig[1]["color_match"], sig[1]["category_match"]) == (1, 1, 1)
    assert (sig[2]["brand_match"], sig[2]["color_match"], sig[2]["category_match"]) == (0, 0, 0)
    assert not shard.search(IndexQuery(text, limit=10, facets=False)).signals  # not asked


def test_dense_vectors_are_stored_and_compared_with_the_query() -> None:
    """The model comes from an installed package (no network): documents carry their title's
    vector, the index stores it, and the `dense` signal is its cosine with the query's."""
    embedder = TextEmbedder()
    docs = [doc(1, "wireless noise cancelling headphones", "Acme", "black", 5),
            doc(2, "stainless steel electric kettle", "Acme", "black", 5)]
    for d, v in zip(docs, embedder.embed([str(d["title"]) for d in docs]), strict=True):
        d["title_vec"] = to_bytes(v)
    shard = TantivyShard(None)
    shard.apply(docs)
    query = to_bytes(embedder.embed(["bluetooth headphones"])[0])
    res = shard.search(IndexQuery(TextQuery((("acme",),)), limit=10, facets=False,
                                  signals=SignalRequest(vector=query)))
    dense = {pid: v[SIGNALS.index("dense")] for pid, v in res.signals.items()}
    assert dense[1] > 0.4 > dense[2]
    assert "title_vec" not in res.hits[0].doc  # vectors stay in the index
    plain = shard.search(IndexQuery(TextQuery((("acme",),)), limit=10, facets=False,
                                    signals=SignalRequest()))
    assert all(v[SIGNALS.index("dense")] == 0.0 for v in plain.signals.values())


def test_a_new_product_version_brings_its_new_title_vector() -> None:
    """Shards keep title vectors in memory by (product, version): a retitled product (a new
    version) is compared by its new title, never a kept old vector."""
    embedder = TextEmbedder()
    shard = TantivyShard(None)

    def put(title: str, version: int) -> None:
        d = doc(1, title, "Acme", "black", 5)
        d["version"] = version
        d["title_vec"] = to_bytes(embedder.embed([title])[0])
        shard.apply([d])

    query = to_bytes(embedder.embed(["bluetooth headphones"])[0])

    def dense() -> float:
        res = shard.search(IndexQuery(TextQuery((("acme",),)), limit=10, facets=False,
                                      signals=SignalRequest(vector=query)))
        return float(res.signals[1][SIGNALS.index("dense")])

    put("wireless noise cancelling headphones", 1)
    before = dense()
    assert dense() == before > 0.4  # the kept vector: the same answer
    put("stainless steel electric kettle", 2)
    assert dense() < 0.4


def test_gains_map_to_grades_of_the_same_gain() -> None:
    assert [GAIN_LEVELS[grade(g)] for g in (0.0, 0.01, 0.1, 1 / 3, 2 / 3, 1.0)] == list(
        GAIN_LEVELS)


def synthetic(queries: int = 40, per_query: int = 30, seed: int = 3) -> tuple[
        TrainingSet, dict[str, dict[str, float]]]:
    """Relevance follows feature 0 (with noise); feature 1 is noise; the index order is
    random: a model must learn feature 0 to beat it."""
    rnd = random.Random(seed)
    rows = []
    judged: dict[str, dict[str, float]] = {}
    for q in range(queries):
        for r in range(per_query):
            signal, noise = rnd.random(), rnd.random()
            gain = 1.0 if signal + rnd.gauss(0, 0.05) > 0.8 else 0.0
            ext = f"q{q}d{r}"
            if gain:
                judged.setdefault(f"q{q}", {})[ext] = gain
            rows.append({"query": f"q{q}", "external_id": ext, "rank": r, "gain": gain,
                         "f_signal": signal, "f_noise": noise})
    table = pa.Table.from_pylist(rows).replace_schema_metadata({"feature_version": "test"})
    return TrainingSet.from_table(table), judged


def test_cross_validation_learns_what_predicts_relevance() -> None:
    data, judged = synthetic()
    report = cross_validate(data, judged, folds=4, rounds=50)
    assert set(report.ndcg) == set(judged)
    assert report.mean > report.baseline_mean + 0.3
    assert report.mean > 0.8


def test_a_comparison_pairs_queries_and_tells_a_feature_that_helps_from_one_that_does_not(
        ) -> None:
    """Leaving out the feature relevance follows costs nDCG on most queries (a difference
    many standard errors wide); leaving out the noise changes nothing beyond the spread;
    every run is the same fold split and seed for both sides, so a log against itself
    differs by exactly 0."""
    data, judged = synthetic(queries=24)
    without_signal = compare(data.without(["f_signal"]), data, judged, seeds=(7,), splits=2,
                             folds=4, rounds=30)
    assert len(without_signal.runs) == 2 and set(without_signal.ndcg) == set(judged)
    assert without_signal.delta < -0.2
    assert without_signal.delta < -5 * without_signal.standard_error
    better, worse = without_signal.moved()
    assert worse > 2 * better
    without_noise = compare(data.without(["f_noise"]), data, judged, seeds=(7,), splits=2,
                            folds=4, rounds=30)
    assert abs(without_noise.delta) < 0.05
    same = compare(data, data, judged, seeds=(7, 11), splits=2, folds=4, rounds=30)
    assert same.delta == 0.0 and same.moved() == (0, 0)
    assert [a for a, _ in same.runs] == [b for _, b in same.runs]
    runs = same.runs  # seed 7 split 0, seed 7 split 1, seed 11 split 0, seed 11 split 1
    assert runs[0] != runs[1] and runs[0] != runs[2]  # each split and each seed applied
    with pytest.raises(ValueError, match="f_missing"):
        data.without(["f_missing"])
    with pytest.raises(TypeError):
        data.without("f_noise")


def test_another_fold_split_holds_out_other_queries() -> None:
    queries = [f"query {i}" for i in range(200)]
    first = [fold_of(q, 5) for q in queries]
    second = [fold_of(q, 5, split=1) for q in queries]
    # split 0 is the assignment training has always used: the query's own hash
    assert first == [fold_of(q, 5, split=0) for q in queries] == [
        int.from_bytes(hashlib.sha256(q.encode()).digest()[:4], "big") % 5 for q in queries]
    assert set(second) == set(range(5))
    assert sum(a != b for a, b in zip(first, second, strict=True)) > 100
    data, judged = synthetic(queries=16)
    assert (cross_validate(data, judged, folds=4, rounds=30, split=1).ndcg
            != cross_validate(data, judged, folds=4, rounds=30).ndcg)  # other models held them


def test_a_model_survives_its_artifact_and_bad_ones_are_refused() -> None:
    data, _ = synthetic(queries=10)
    model = train(data, rounds=20)
    again = LgbmRanker.from_bytes(model.to_bytes(), feature_names=data.feature_names)
    x = data.features[:50]
    assert np.array_equal(model.score(x), again.score(x))
    with pytest.raises(ValueError):
        LgbmRanker.from_bytes(b"not a model", feature_names=data.feature_names)
    with pytest.raises(ValueError):
        LgbmRanker.from_bytes(model.to_bytes())  # trained on 2 features, not LEARNED_FEATURES
    assert data.digest() == synthetic(queries=10)[0].digest()


def test_a_bag_of_models_is_one_model_scoring_their_mean() -> None:
    """`train` averages BAG models, each on its own samples, into one ordinary LightGBM
    model: it scores the mean of its members (to rounding), survives its artifact, and a
    bag of one is exactly the model trained alone."""
    data, _ = synthetic(queries=12)
    params = {**PARAMS, "seed": 3}
    members = [train(data, {**params, "seed": 3 + 1000 * k}, rounds=10, bag=1)
               for k in range(3)]
    bagged = train(data, params, rounds=10, bag=3)
    x = data.features
    mean = np.mean([m.score(x) for m in members], axis=0)
    assert np.allclose(bagged.score(x), mean, rtol=0, atol=1e-12)
    assert not np.allclose(members[0].score(x), members[1].score(x))  # they differ
    assert bagged._booster.num_trees() == 30
    again = LgbmRanker.from_bytes(bagged.to_bytes(), feature_names=data.feature_names)
    assert np.array_equal(again.score(x), bagged.score(x))
    assert average([members[0]._booster]).model_to_string() == members[0].to_bytes().decode()
    with pytest.raises(ValueError, match="bag"):
        train(data, params, rounds=10, bag=0)


def test_learned_features_do_not_change_within_a_day() -> None:
    docs = [{"price": 10.0, "rating_avg": 4.0, "rating_count": 3, "in_stock": True,
             "created_at": 1_600_000_000 + i * 86_400 * 30, "seller_rating": 4.0}
            for i in range(5)]
    day = 1_700_000_000 - 1_700_000_000 % 86_400
    early = learned_matrix(QueryContext(words=1), [1.0] * 5, [None] * 5, docs, day + 60.0)
    late = learned_matrix(QueryContext(words=1), [1.0] * 5, [None] * 5, docs, day + 86_000.0)
    assert (early == late).all()
    tomorrow = learned_matrix(QueryContext(words=1), [1.0] * 5, [None] * 5, docs,
                              day + 86_400.0 + 60)
    col = LEARNED_FEATURES.index("recency")
    assert (tomorrow[:, col] < early[:, col]).all()  # a day older


@pytest.mark.parametrize("scan", [1000, 1])  # 1: every signal query confined to the products
def test_a_read_only_shard_keeps_what_it_built_until_it_reloads(
        tmp_path: Path, scan: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only shard (what a Gateway searches) keeps each word's clauses and each
    query's signals per product over its searcher: a repeated query, or one whose candidates
    partly changed (a filter), answers what a shard keeping nothing answers; a commit it has
    not reloaded is not seen, and after reload() new words, scores and signals are."""
    path = tmp_path / "g1" / "shard-0"
    writer = TantivyShard(path)
    writer.apply([doc(1, "red oak desk lamp", "Acme", "red", 5),
                  doc(2, "desk organizer with lamp", "Globex", "black", 6),
                  doc(3, "oak desk", "Acme", "red", 5),
                  doc(4, "walnut desk with drawers and a lamp shelf", "Acme", "red", 7)])
    reader = TantivyShard(path, read_only=True)
    text = TextQuery((("desk",), ("lamp", "light")), require_all=False)
    ask = SignalRequest(brands=("acme",), colors=("red",), categories=(5,))

    monkeypatch.setattr("adapters.search.tantivy_shard.SIGNAL_SCAN", scan)

    def answer(shard: TantivyShard, **filters: object) -> tuple[object, object]:
        res = shard.search(IndexQuery(text, Filters(**filters),  # type: ignore[arg-type]
                                      limit=10, facets=False, signals=ask))
        return [(h.product_id, h.score) for h in res.hits], res.signals

    assert answer(reader, brands=("acme",)) == answer(writer, brands=("acme",))
    assert answer(reader) == answer(writer)  # some products' signals kept, some not
    assert answer(reader, brands=("acme",)) == answer(writer, brands=("acme",))  # all kept
    view = reader._view
    assert view is not None and len(view.clauses) > 0
    assert sorted(view.signals[text.groups, ask].rows) == [1, 2, 3, 4]  # kept, per product
    writer.apply([doc(5, "desk lamp", "Acme", "red", 5),  # a new title, and a changed one
                  doc(3, "oak desk with lamp", "Acme", "red", 5) | {"version": 2}])
    assert 5 not in dict(answer(reader)[0])  # not reloaded: the searcher it had
    reader.reload()
    assert answer(reader) == answer(writer) and 5 in dict(answer(reader)[0])
    assert answer(reader, brands=("acme",)) == answer(writer, brands=("acme",))


@pytest.mark.parametrize("rows_kept", [3, 4])
def test_signals_kept_beyond_their_limit_start_again_with_the_page_s_products(
        tmp_path: Path, rows_kept: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same words under another filter add products to what a read-only shard keeps;
    past ROWS_KEPT it keeps only the last page's products (those it held and those it
    computed), and every answer holds what a new shard (keeping nothing) answers."""
    path = tmp_path / "g1" / "shard-0"
    TantivyShard(path).apply([doc(1, "red oak desk lamp", "Acme", "red", 5),
                              doc(2, "desk organizer with lamp", "Globex", "black", 6),
                              doc(3, "oak desk", "Acme", "red", 5),
                              doc(4, "walnut desk with a lamp shelf", "Initech", "red", 7)])
    monkeypatch.setattr("adapters.search.tantivy_shard.ROWS_KEPT", rows_kept)
    reader = TantivyShard(path, read_only=True)
    text = TextQuery((("desk",), ("lamp",)), require_all=False)
    ask = SignalRequest(brands=("acme",), colors=("red",), categories=(5,))

    def signals(shard: TantivyShard, *brands: str) -> dict[int, tuple[float, ...]]:
        return shard.search(IndexQuery(text, Filters(brands=brands), limit=10, facets=False,
                                       signals=ask)).signals

    def fresh(*brands: str) -> dict[int, tuple[float, ...]]:
        return signals(TantivyShard(path, read_only=True), *brands)

    assert signals(reader, "acme", "globex") == fresh("acme", "globex")  # 1, 2, 3 kept
    assert signals(reader, "initech", "acme") == fresh("initech", "acme")  # 4 added
    view = reader._view
    assert view is not None
    kept = sorted(view.signals[text.groups, ask].rows)
    assert kept == ([1, 3, 4] if rows_kept == 3 else [1, 2, 3, 4])  # 3 + 1 > 3
    assert signals(reader) == fresh() and len(fresh()) == 4
    assert fresh()[1][SIGNALS.index("brand_match")] == 1.0
    assert fresh()[4][SIGNALS.index("color_match")] == 1.0


def test_a_read_only_shard_keeps_signals_of_at_most_signals_kept_queries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A query not kept, past SIGNALS_KEPT queries kept, starts the kept signals again; a
    signal computation that fails leaves what was kept as it was."""
    path = tmp_path / "g1" / "shard-0"
    TantivyShard(path).apply([doc(1, "red oak desk lamp", "Acme", "red", 5),
                              doc(2, "desk organizer with lamp", "Globex", "black", 6)])
    monkeypatch.setattr("adapters.search.tantivy_shard.SIGNALS_KEPT", 2)
    reader = TantivyShard(path, read_only=True)
    for words in ("desk", "lamp", "oak", "lamp"):
        text = TextQuery(((words,),), require_all=False)
        assert reader.search(IndexQuery(text, limit=10, facets=False,
                                        signals=SignalRequest())).signals
    assert reader._view is not None
    assert sorted(g for (g, _) in reader._view.signals) == [(("lamp",),), (("oak",),)]
    before = dict(reader._view.signals)

    def failing(*args: object) -> None:
        raise RuntimeError("signals failed")

    monkeypatch.setattr(TantivyShard, "_signals", failing)
    with pytest.raises(RuntimeError):
        reader.search(IndexQuery(TextQuery((("desk",),), require_all=False), limit=10,
                                 facets=False, signals=SignalRequest()))
    assert reader._view.signals == before


def test_signals_of_many_words_and_of_each_field() -> None:
    """Ten words: presence bits past one bitmask search's SLOTS_PER_MASK slots; a word in the
    title and one in the brand (coverage against title coverage); each field's score in its
    own column."""
    shard = TantivyShard(None)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
             "india", "juliet"]
    shard.apply([doc(1, " ".join(words), "Acme", "red", 5),
                 doc(2, "alpha bravo", "Globex", "black", 6) | {"description": "charlie delta",
                                                               "category_path": ["Kilo"]},
                 doc(3, "kilo lima", "Globex", "black", 6) | {"description": "lima"}])
    text = TextQuery(tuple((w,) for w in words), require_all=False)
    assert 4 + 2 * len(words) > ts.SLOTS_PER_MASK
    sig = shard.search(IndexQuery(text, limit=10, facets=False, signals=SignalRequest(
        brands=("globex",)))).signals
    col = {name: i for i, name in enumerate(SIGNALS)}
    assert [sig[1][col[n]] for n in ("coverage", "coverage_title", "phrase_title")] == [
        1.0, 1.0, 1.0]
    assert [sig[2][col[n]] for n in ("coverage", "coverage_title", "phrase_title")] == [
        0.4, 0.2, 0.0]
    assert (sig[1][col["brand_match"]], sig[2][col["brand_match"]]) == (0.0, 1.0)
    assert sig[2][col["bm25_description"]] > 0 and sig[1][col["bm25_description"]] == 0.0
    kilo = shard.search(IndexQuery(TextQuery((("kilo",),), require_all=False), limit=10,
                                   facets=False, signals=SignalRequest())).signals
    assert kilo[2][col["bm25_category"]] > 0 and kilo[2][col["bm25_title"]] == 0.0
    assert kilo[3][col["bm25_title"]] > 0 and kilo[3][col["bm25_category"]] == 0.0
    # a word of the title and one of the brand only, in either order
    for groups in ((("globex",), ("lima",)), (("lima",), ("globex",))):
        both = shard.search(IndexQuery(TextQuery(groups, require_all=False), limit=10,
                                       facets=False, signals=SignalRequest())).signals[3]
        assert (both[col["coverage"]], both[col["coverage_title"]]) == (1.0, 0.5), groups
        assert both[col["bm25_brand"]] > 0 and both[col["bm25_title"]] > 0
        assert both[col["bm25_description"]] > 0 and both[col["bm25_category"]] == 0.0
