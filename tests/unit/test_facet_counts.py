"""Facet counts merged across shards and cut to the buckets shown."""

from __future__ import annotations

import random

from domain.search import Facets, merged_by_key, normalize_key, shown_buckets, top_buckets


def test_top_buckets_are_what_sorting_every_bucket_gives() -> None:
    rnd = random.Random(7)
    for trial in range(300):
        size = rnd.randrange(0, 60)
        counts = {f"b{i}": rnd.randrange(1, 6) for i in range(size)}  # many ties
        n = rnd.randrange(1, 25)
        want = sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:n]
        assert top_buckets(counts, n) == want, (trial, counts, n)
    assert top_buckets({3: 1, 1: 1, 2: 5}, 2) == [(2, 5), (1, 1)]  # integer keys too


def test_a_chosen_value_stays_on_offer_however_few_products_it_has() -> None:
    counts = {f"Brand {i:02d}": 100 - i for i in range(25)} | {"Zorblax  Audio": 1}
    top = top_buckets(counts, 20)
    assert shown_buckets(counts, 20, ()) == top
    # chosen by its key (lower case, single spaces), after the first 20, once
    assert shown_buckets(counts, 20, ("zorblax audio", "brand 03", "nobody"),
                         normalize_key) == [*top, ("Zorblax  Audio", 1)]
    assert shown_buckets(counts, 20, ("brand 24", "zorblax audio"), normalize_key) == [
        *top, ("Brand 24", 76), ("Zorblax  Audio", 1)]
    assert shown_buckets({"red": 3, "blue": 1}, 1, ("blue",)) == [("red", 3), ("blue", 1)]


def test_facets_add_up_across_shards_without_changing_the_parts() -> None:
    one = Facets(brands={"Sony": 2, "Bose": 1}, categories={7: 2},
                 attributes={"color": {"black": 2}})
    two = Facets(brands={"Sony": 3, "Acme": 4}, categories={7: 1, 8: 1},
                 attributes={"color": {"black": 1, "white": 1}, "size": {"m": 1}})
    merged = Facets()
    merged.add(one)
    merged.add(two)
    assert merged.brands == {"Sony": 5, "Bose": 1, "Acme": 4}
    assert merged.categories == {7: 3, 8: 1}
    assert merged.attributes == {"color": {"black": 3, "white": 1}, "size": {"m": 1}}
    assert one.brands == {"Sony": 2, "Bose": 1}  # the first part was copied, not taken
    assert one.attributes == {"color": {"black": 2}}


def test_a_brand_written_two_ways_is_one_bucket() -> None:
    """The brand filter compares brand_key: "Nike: 33" and "NIKE: 1" were shown, and
    choosing Nike showed 34."""
    merged = merged_by_key({"Nike": 33, "NIKE": 1, "Bose": 4, "bose": 4, "Acme  Co": 2,
                            "acme co": 1}, normalize_key)
    assert merged == {"Nike": 34, "Bose": 8, "Acme  Co": 3}
    assert merged_by_key({"a": 1}, normalize_key) == {"a": 1}
