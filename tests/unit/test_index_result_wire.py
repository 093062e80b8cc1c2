"""What a shard actor sends the Gateway: an IndexResult survives pickling (Ray's cloudpickle
and the standard pickle) unchanged, its hits as Hit objects."""

from __future__ import annotations

import pickle

import ray.cloudpickle

from domain.search import Facets, Hit, IndexResult


def test_index_result_round_trips_through_both_picklers() -> None:
    facets = Facets(brands={"Sony": 2}, price_ranges={"$25-$50": 1}, ratings={4: 1},
                    categories={7: 2}, attributes={"color": {"black": 2}})
    result = IndexResult([Hit(2, 1.5, {"product_id": 2, "title": "A"}),
                          Hit(1, 0.25, {"product_id": 1, "price": None})], 9, facets)
    for dumps in (pickle.dumps, ray.cloudpickle.dumps):
        copy = pickle.loads(dumps(result))
        assert copy == result
        assert all(type(h) is Hit for h in copy.hits)
        assert [h.product_id for h in copy.hits] == [2, 1] and copy.total == 9
