"""Caches for read paths: Redis cache-aside with single-flight misses, and in-process values.

`Cache` (cache_aside.py; Redis, shared by every replica): one MGET for many keys, misses
loaded together and stored each with its own lifetime; single flight per process
(single_flight.py), leases so that only one replica writes and never a value read before an
invalidation (leases.py), short timeouts and a breaker so that a Redis down or slow costs
nothing but cache hits (connection.py, breaker.py).

`Invalidations` (invalidations.py; this process only): follows the channel on which the index
builder announces changed products, so in-process copies of their pages can be dropped.
"""

from adapters.cache.cache_aside import Cache
from adapters.cache.connection import create_cache_redis
from adapters.cache.invalidations import Invalidations, announce, drop_pages
from adapters.cache.single_flight import SingleFlight
from adapters.cache.values import Loaded, dumps, loads

__all__ = [
    "Cache",
    "Invalidations",
    "Loaded",
    "SingleFlight",
    "announce",
    "create_cache_redis",
    "drop_pages",
    "dumps",
    "loads",
]
