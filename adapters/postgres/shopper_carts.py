"""Shoppers' carts in PostgreSQL: the cart (found by its token's hash) and its holds."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from typing import cast

from adapters.postgres import Conn
from domain.errors import NotFound
from domain.pricing.tokens import SignedQuote


class CartNotFound(NotFound):
    code = "cart_not_found"


@dataclasses.dataclass(frozen=True)
class Hold:
    reservation_id: str
    variant_id: int
    quantity: int
    expires_at: datetime
    seller_id: int | None = None  # whose units (another seller's offer); None: the listing's
    committed: bool = False  # sold by a checkout (that may not have finished the order)


@dataclasses.dataclass(frozen=True)
class CartRow:
    cart_id: str
    coupon: str | None
    status: str  # OPEN | CHECKED_OUT
    order_json: str | None  # the checkout's answer, as JSON text
    holds: tuple[Hold, ...]


@dataclasses.dataclass(frozen=True)
class VariantInfo:
    """What a cart line shows of its variant."""

    variant_id: int
    product_id: int
    title: str
    sku: str
    attributes: dict[str, str]
    image_url: str | None
    active: bool
    seller_id: int = 0  # the listing seller


async def create(conn: Conn, cart_id: str, token_hash: bytes) -> None:
    await conn.execute("INSERT INTO shopper_carts (cart_id, token_hash) VALUES ($1, $2)",
                       cart_id, token_hash)


async def find(conn: Conn, token_hash: bytes) -> CartRow:
    row = await conn.fetchrow(
        "SELECT cart_id, coupon_code, status, order_json::text AS order_json "
        "FROM shopper_carts WHERE token_hash = $1", token_hash)
    if row is None:
        raise CartNotFound("no cart: POST /api/v1/cart makes one")
    holds = await conn.fetch(
        "SELECT reservation_id, variant_id, quantity, expires_at, seller_id, "
        "committed_at IS NOT NULL AS committed "
        "FROM shopper_cart_holds "
        "WHERE cart_id = $1 ORDER BY created_at, reservation_id", row["cart_id"])
    return CartRow(row["cart_id"], row["coupon_code"], row["status"], row["order_json"],
                   tuple(Hold(h["reservation_id"], int(h["variant_id"]), h["quantity"],
                              h["expires_at"], h["seller_id"], h["committed"]) for h in holds))


async def take_lease(conn: Conn, token_hash: bytes, lease: str, term_s: float) -> bool:
    """Takes the cart's lease for `term_s` (False: another change holds it);
    CartNotFound if there is no such cart."""
    taken = await conn.fetchval(
        """UPDATE shopper_carts SET busy_token = $2,
                  busy_until = now() + make_interval(secs => $3)
           WHERE token_hash = $1 AND (busy_until IS NULL OR busy_until < now())
           RETURNING true""", token_hash, lease, term_s)
    if taken:
        return True
    if not await conn.fetchval("SELECT true FROM shopper_carts WHERE token_hash = $1",
                               token_hash):
        raise CartNotFound("no cart: POST /api/v1/cart makes one")
    return False


async def renew_lease(conn: Conn, token_hash: bytes, lease: str, term_s: float) -> None:
    await conn.execute(
        "UPDATE shopper_carts SET busy_until = now() + make_interval(secs => $3) "
        "WHERE token_hash = $1 AND busy_token = $2", token_hash, lease, term_s)


async def end_lease(conn: Conn, token_hash: bytes, lease: str) -> None:
    """Gives the lease back (if it is still this one: run out, another may hold it now)."""
    await conn.execute(
        "UPDATE shopper_carts SET busy_token = NULL, busy_until = NULL "
        "WHERE token_hash = $1 AND busy_token = $2", token_hash, lease)


async def add_hold(conn: Conn, cart_id: str, hold: Hold) -> None:
    """Idempotent: the same reservation (a retried add) is recorded once."""
    await conn.execute(
        """INSERT INTO shopper_cart_holds (reservation_id, cart_id, variant_id, quantity,
                                           expires_at, seller_id)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (reservation_id) DO NOTHING""",
        hold.reservation_id, cart_id, hold.variant_id, hold.quantity, hold.expires_at,
        hold.seller_id)
    await conn.execute("UPDATE shopper_carts SET updated_at = now() WHERE cart_id = $1",
                       cart_id)


async def mark_committed(conn: Conn, cart_id: str, reservation_ids: list[str]) -> None:
    await conn.execute(
        "UPDATE shopper_cart_holds SET committed_at = coalesce(committed_at, now()) "
        "WHERE cart_id = $1 AND reservation_id = ANY($2)", cart_id, reservation_ids)


async def drop_holds(conn: Conn, cart_id: str, reservation_ids: list[str]) -> None:
    await conn.execute(
        "DELETE FROM shopper_cart_holds WHERE cart_id = $1 AND reservation_id = ANY($2)",
        cart_id, reservation_ids)


async def set_coupon(conn: Conn, cart_id: str, code: str | None) -> None:
    await conn.execute(
        "UPDATE shopper_carts SET coupon_code = $2, updated_at = now() WHERE cart_id = $1",
        cart_id, code)


async def check_out(conn: Conn, cart_id: str, order: Mapping[str, object]) -> str:
    """Marks the cart checked out with its order; the order recorded (the first one, if a
    concurrent checkout got there first)."""
    done = await conn.fetchval(
        """UPDATE shopper_carts SET status = 'CHECKED_OUT', order_json = $2::jsonb,
                                    updated_at = now()
           WHERE cart_id = $1 AND status = 'OPEN' RETURNING order_json::text""",
        cart_id, order)
    if done is not None:
        return str(done)
    return str(await conn.fetchval(
        "SELECT order_json::text FROM shopper_carts WHERE cart_id = $1", cart_id))


async def accepted_quote(conn: Conn, reference: str) -> SignedQuote | None:
    """The signed quote accepted for `reference`, if any."""
    found = await conn.fetchval(
        "SELECT payload FROM accepted_quotes WHERE reservation_id = $1", reference)
    if isinstance(found, str):  # written as JSON text inside JSON until 2026-12-07
        found = json.loads(found)
    return cast("SignedQuote | None", found)


async def variants(conn: Conn, ids: list[int]) -> dict[int, VariantInfo]:
    rows = await conn.fetch(
        """SELECT v.variant_id, v.product_id, p.title, v.sku, v.attributes::text AS attrs,
                  p.seller_id,
                  v.status = 'ACTIVE' AND p.status = 'ACTIVE' AND s.status = 'ACTIVE'
                    AS active,  -- for sale: as pricing's inputs (a suspended seller's is not)
                  (SELECT i.url FROM product_images i WHERE i.product_id = p.product_id
                     AND (i.variant_id IS NULL OR i.variant_id = v.variant_id)
                   ORDER BY i.variant_id NULLS LAST, i.position LIMIT 1) AS image_url
           FROM product_variants v JOIN products p ON p.product_id = v.product_id
           JOIN sellers s ON s.seller_id = p.seller_id
           WHERE v.variant_id = ANY($1::bigint[])""", ids)
    return {int(r["variant_id"]): VariantInfo(
        int(r["variant_id"]), int(r["product_id"]), r["title"], r["sku"],
        {str(k): str(v) for k, v in json.loads(r["attrs"]).items()}, r["image_url"],
        bool(r["active"]), int(r["seller_id"])) for r in rows}


async def warehouse_seller(conn: Conn, warehouses: list[str]) -> int | None:
    """The seller owning any of these warehouses (their offer's units), None if none does
    (the platform's: the listing seller's units)."""
    found = await conn.fetchval(
        "SELECT seller_id FROM warehouses WHERE warehouse_id = ANY($1::text[]) "
        "AND seller_id IS NOT NULL LIMIT 1", warehouses)
    return None if found is None else int(found)
