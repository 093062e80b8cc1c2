"""Sellers and their API keys in PostgreSQL (the internal seller-accounts API).

A seller's keys: the one in `sellers.api_key_hash` (the key it was made with, before keys
had their own table) and those in `seller_api_keys`. A key is shown once, when it is made.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import datetime

from adapters.postgres import Conn
from adapters.postgres.outbox import OUTBOX_CHANNEL
from domain.errors import NotFound, SellerSuspended
from domain.sellers import hash_api_key, new_api_key

LEGACY_KEY_ID = "k-initial"  # the key in sellers.api_key_hash
_ANNOUNCE = f"""
WITH e AS (
    INSERT INTO outbox (event_type, aggregate_id, aggregate_version, payload)
    SELECT 'product.updated', p.product_id, p.version,
           jsonb_build_object('product_id', p.product_id::text, 'seller_id', p.seller_id::text,
                              'version', p.version, 'cause', 'seller')
    FROM products p
    WHERE p.status <> 'DELETED' AND (p.seller_id = $1 OR p.product_id IN (
        SELECT v.product_id FROM offers o JOIN product_variants v USING (variant_id)
        WHERE o.seller_id = $1))
    RETURNING event_id)
SELECT pg_notify('{OUTBOX_CHANNEL}', max(event_id)::text) FROM e HAVING count(*) > 0
"""


class SellerNotFound(NotFound):
    code = "seller_not_found"


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    key_id: str
    prefix: str
    created_at: datetime | None
    revoked_at: datetime | None


@dataclasses.dataclass(frozen=True)
class SellerAccount:
    seller_id: int
    name: str
    rating: float | None
    status: str
    keys: tuple[KeyInfo, ...]


@dataclasses.dataclass(frozen=True)
class IssuedKey:
    key_id: str
    api_key: str  # shown once
    revoked: tuple[str, ...]  # key ids revoked with it (a rotation)


async def seller_for_key(conn: Conn, api_key: str) -> tuple[int, str] | None:
    """(seller id, name) of an active seller's unrevoked key; SellerSuspended when the
    seller of an unrevoked key is suspended (the key holder is told why it stopped working)."""
    row = await conn.fetchrow(
        """SELECT s.seller_id, s.name, s.status FROM seller_api_keys k
           JOIN sellers s USING (seller_id)
           WHERE k.key_hash = $1 AND k.revoked_at IS NULL
           UNION ALL
           SELECT seller_id, name, status FROM sellers WHERE api_key_hash = $1
           LIMIT 1""", hash_api_key(api_key))
    if row is None:
        return None
    if row["status"] != "ACTIVE":
        raise SellerSuspended(f"seller {row['seller_id']} is suspended: its API keys are "
                              "refused until the platform reinstates it")
    return (int(row["seller_id"]), str(row["name"]))


async def create(conn: Conn, seller_id: int, name: str, rating: float | None) -> IssuedKey:
    async with conn.transaction():
        await conn.execute("INSERT INTO sellers (seller_id, name, rating) VALUES ($1, $2, $3)",
                           seller_id, name, rating)
        return await _issue(conn, seller_id, revoke_others=False)


async def account(conn: Conn, seller_id: int) -> SellerAccount:
    row = await conn.fetchrow(
        "SELECT seller_id, name, rating::float8 AS rating, status, api_key_hash IS NOT NULL "
        "AS legacy, created_at FROM sellers WHERE seller_id = $1", seller_id)
    if row is None:
        raise SellerNotFound(f"seller {seller_id} not found")
    keys = [KeyInfo(r["key_id"], r["prefix"], r["created_at"], r["revoked_at"])
            for r in await conn.fetch(
                "SELECT key_id, prefix, created_at, revoked_at FROM seller_api_keys "
                "WHERE seller_id = $1 ORDER BY created_at, key_id", seller_id)]
    if row["legacy"]:
        keys.insert(0, KeyInfo(LEGACY_KEY_ID, "ak_", row["created_at"], None))
    return SellerAccount(int(row["seller_id"]), row["name"], row["rating"], row["status"],
                         tuple(keys))


async def update(conn: Conn, seller_id: int, name: str | None, rating: float | None,
                 status: str | None, clear_rating: bool = False) -> SellerAccount:
    """One transaction: the seller row, and a `product.updated` event per product of the
    seller's or offered by it, so that search documents and cached product pages and listing
    prices follow (a suspended seller's products leave search, its offers' units and prices
    leave other sellers' listings; pages show the new name or rating)."""
    async with conn.transaction():
        done = await conn.fetchval(
            """UPDATE sellers SET name = coalesce($2, name),
                                  rating = CASE WHEN $5 THEN NULL ELSE coalesce($3, rating) END,
                                  status = coalesce($4, status)
               WHERE seller_id = $1 RETURNING seller_id""",
            seller_id, name, rating, status, clear_rating)
        if done is None:
            raise SellerNotFound(f"seller {seller_id} not found")
        await conn.execute(_ANNOUNCE, seller_id)
    return await account(conn, seller_id)


async def issue(conn: Conn, seller_id: int, revoke_others: bool) -> IssuedKey:
    async with conn.transaction():
        exists = await conn.fetchval(
            "SELECT 1 FROM sellers WHERE seller_id = $1 FOR UPDATE", seller_id)
        if exists is None:
            raise SellerNotFound(f"seller {seller_id} not found")
        return await _issue(conn, seller_id, revoke_others)


async def _issue(conn: Conn, seller_id: int, revoke_others: bool) -> IssuedKey:
    revoked: list[str] = []
    if revoke_others:
        revoked = [r["key_id"] for r in await conn.fetch(
            """UPDATE seller_api_keys SET revoked_at = now()
               WHERE seller_id = $1 AND revoked_at IS NULL RETURNING key_id""", seller_id)]
        if await conn.fetchval(
                "UPDATE sellers SET api_key_hash = NULL WHERE seller_id = $1 "
                "AND api_key_hash IS NOT NULL RETURNING 1", seller_id):
            revoked.insert(0, LEGACY_KEY_ID)
    key = new_api_key()
    key_id = "k" + secrets.token_hex(8)
    await conn.execute(
        "INSERT INTO seller_api_keys (key_id, seller_id, key_hash, prefix) "
        "VALUES ($1, $2, $3, $4)", key_id, seller_id, hash_api_key(key), key[:10])
    return IssuedKey(key_id, key, tuple(sorted(revoked)))


async def revoke(conn: Conn, seller_id: int, key_id: str) -> SellerAccount:
    """Revokes one key (at once: the next request with it is a 401). Revoking a revoked key
    changes nothing."""
    if key_id == LEGACY_KEY_ID:  # listed only while it exists: revoked, it is gone (404)
        found = await conn.fetchval(
            "UPDATE sellers SET api_key_hash = NULL WHERE seller_id = $1 "
            "AND api_key_hash IS NOT NULL RETURNING 1", seller_id)
        if found is None:
            raise NotFound(f"seller {seller_id} has no key {key_id}")
    else:
        found = await conn.fetchval(
            """UPDATE seller_api_keys SET revoked_at = coalesce(revoked_at, now())
               WHERE seller_id = $1 AND key_id = $2 RETURNING 1""", seller_id, key_id)
        if found is None:
            raise NotFound(f"seller {seller_id} has no key {key_id}")
    return await account(conn, seller_id)


async def public_profile(conn: Conn, seller_id: int) -> tuple[str, float | None]:
    row = await conn.fetchrow(
        "SELECT name, rating::float8 AS rating FROM sellers WHERE seller_id = $1 "
        "AND status = 'ACTIVE'", seller_id)
    if row is None:
        raise SellerNotFound(f"seller {seller_id} not found")
    return str(row["name"]), row["rating"]
