"""Leases: only one writer per key across replicas.

A miss claims the key with a lease (`SET NX PX`) before reading the database, and the value is
stored only if the lease is still there (a Lua compare-and-set). An invalidation (`DEL`, the
index builder's after each catalog or price event) removes the lease too, so a value read
before a change is never stored after the change's invalidation (the classic cache-aside race
that leaves stale data for a whole TTL). The load itself is not coordinated across replicas:
each replica that misses at the same moment loads once (N replicas: at most N loads for one
stampede), but only the lease holder writes.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import redis.asyncio as aioredis

LEASE = b"\x00lease:"  # a claimed key holds this prefix and a token until the value comes
LEASE_MS = 10_000  # a lease outlives any sane load; a crashed loader's lease just expires

# KEYS: the keys to claim. ARGV[1]: the lease value, ARGV[2]: its lifetime (ms).
# Returns 1 per key claimed, 0 per key that exists already (a value, or another lease).
_CLAIM = """
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('SET', k, ARGV[1], 'NX', 'PX', ARGV[2]) then out[i] = 1 else out[i] = 0 end
end
return out
"""
# KEYS: the keys to fill. ARGV[1]: the lease value; then a value and a lifetime (ms) per key
# (lifetime 0: drop the lease, store nothing). A key is written only while it still holds our
# lease (no invalidation came in between).
_FILL = """
local n = 0
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then
    if ARGV[2 * i + 1] == '0' then
      redis.call('DEL', k)
    else
      redis.call('SET', k, ARGV[2 * i], 'PX', ARGV[2 * i + 1])
      n = n + 1
    end
  end
end
return n
"""


def new_lease() -> bytes:
    """A lease value of our own (the prefix and a random token)."""
    return LEASE + secrets.token_hex(8).encode()


def is_lease(raw: bytes) -> bool:
    """A value read is a lease (someone is loading it), not a cached value."""
    return raw.startswith(LEASE)


class Leases:
    """The claim and fill scripts on one client."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._claim = redis.register_script(_CLAIM)
        self._fill = redis.register_script(_FILL)

    async def claim(self, keys: Sequence[str], lease: bytes) -> list[int]:
        """1 per key claimed with `lease`, 0 per key that holds a value or another lease."""
        return await self._claim(keys=keys, args=[lease, LEASE_MS])

    async def fill(self, keys: Sequence[str], lease: bytes,
                   values: Sequence[tuple[bytes, int]]) -> int:
        """Stores (value, lifetime in ms) per key where `lease` still stands (lifetime 0:
        drops the lease only); how many values were stored."""
        args: list[bytes | int] = [lease]
        for value, ttl_ms in values:
            args += [value, ttl_ms]
        return await self._fill(keys=keys, args=args)
