"""The shoppers' view of stock in Redis: status and quantity hint per variant.

Written only by the InventoryPartition actor that owns the variant, after each group commit
(so it never shows an uncommitted change, and one writer per key keeps the order). Read in
bulk (one MGET) by search and product pages; a miss falls back to the owning actor, which then
writes the entry. Entries expire (`TTL_S`) as a safety net for a write that failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

import redis.asyncio as aioredis

from adapters.redis_keys import stock_key
from domain.inventory_api import StockSnapshot, StockView

TTL_S = 600  # a safety net: the owners publish every snapshot again at half of it


key = stock_key  # the entry of a variant


async def publish(redis: aioredis.Redis, snapshots: Mapping[int, StockSnapshot]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for v, snap in snapshots.items():
            pipe.set(key(v), json.dumps(snap, separators=(",", ":")), ex=TTL_S)
        await pipe.execute()


async def fetch(redis: aioredis.Redis, variant_ids: Iterable[int]) -> dict[int, StockView]:
    """Cached snapshots of the variants that have one, as cached (misses are left out)."""
    ids = list(dict.fromkeys(variant_ids))
    if not ids:
        return {}
    return read(ids, await redis.mget(keys(ids)))


def keys(variant_ids: Sequence[int]) -> list[str]:
    """The entries of these variants, to read in one MGET (or in a caller's MGET)."""
    return [key(v) for v in variant_ids]


def read(variant_ids: Sequence[int], raw: Sequence[bytes | str | None]) -> dict[int, StockView]:
    """The snapshots among an MGET's answers for `keys(variant_ids)` (misses left out)."""
    return {v: json.loads(r) for v, r in zip(variant_ids, raw, strict=True) if r is not None}
