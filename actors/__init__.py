"""Ray actors: inventory partitions, index builders, search-index shards.

Every Ray call for an actor type goes through one small wrapper per type, so the logic that
uses it can be tested with a fake.
"""
