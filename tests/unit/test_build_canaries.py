"""The index builder's canary check (actors/index_builder.py): a new generation must find a
few random products by their titles' words before it goes live. Titles hold punctuation
("#1000 -", "Humanity:"): the words searched are the ones that can match, as a shopper's
query's are, or a sound generation would be refused."""

from __future__ import annotations

import pytest

from actors.index_builder import canary_query
from adapters.search.tantivy_shard import TantivyShard
from domain.search import IndexQuery


def doc(pid: int, title: str) -> dict[str, object]:
    return {"product_id": pid, "version": 1, "external_id": f"E{pid}", "title": title,
            "description": "", "brand": "Acme", "brand_key": "acme", "category_ids": [1],
            "category_path": ["Things"], "price": 10.0, "rating_avg": 4.0, "rating_count": 1,
            "in_stock": True, "attributes": {}, "created_at": 1, "variant_ids": [pid]}


TITLES = ["Torino Pro Wave Brush #1000 - Medium Firm", "Cards Against Humanity: Blue Box",
          "USB-C to USB-C Cable (6 ft) | 100W", "& more: the - / best | of 2020",
          "oak desk lamp"]


@pytest.mark.parametrize("title", TITLES)
def test_a_canary_is_found_by_its_title(title: str) -> None:
    shard = TantivyShard(None)
    shard.apply([doc(1, title), doc(2, "chair"), doc(3, "table lamp")])
    query = canary_query(title)
    assert query.groups and all(any(c.isalnum() for c in g[0]) for g in query.groups)
    found = shard.search(IndexQuery(query, limit=50, facets=False)).hits
    assert 1 in {h.product_id for h in found}


def test_a_title_without_words_asks_nothing() -> None:
    assert canary_query("- / |").groups == ()
