"""The pricing and promotions API's writes: sellers' offers and deals, platform deals, coupons
and dynamic pricing rules. Each write is one transaction with its `pricing_audit` row (who,
what, before, after); offers, deals and rules reach search documents and product pages
through the outbox events their table triggers write in that same transaction (0008, 0009).

Validation that needs no database (amounts, windows, bounds) is the domain's (domain.pricing)
and the route's; what needs the database (the variant exists and is on sale, the seller sells
the product, the version read is current) is checked here, under the row's lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Literal

import asyncpg

from adapters.postgres import Conn
from domain.errors import Conflict, NotFound, ValidationFailed, VersionConflict
from domain.pricing import Coupon, Deal, DynamicRule
from domain.pricing.deals import MAX_DEAL_BP

Actor = str  # "platform" or "seller:<id>"
StockSource = Literal["seller", "platform"]
Entity = Literal["offer", "deal", "coupon", "rule"]


class OfferNotFound(NotFound):
    code = "offer_not_found"


class DealNotFound(NotFound):
    code = "deal_not_found"


class RuleNotFound(NotFound):
    code = "rule_not_found"


class VariantNotForSale(NotFound):
    code = "variant_not_found"


def seller_actor(seller_id: int) -> Actor:
    return f"seller:{seller_id}"


async def _audit(conn: Conn, entity: Entity, key: str, action: str, actor: Actor,
                 seller_id: int | None, before: str | None, after: str | None) -> None:
    await conn.execute(
        """INSERT INTO pricing_audit (entity, entity_key, action, actor, seller_id, before,
                                      after)
           VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7::text::jsonb)""",
        entity, key, action, actor, seller_id, before, after)


# -- offers -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class OfferRecord:
    variant_id: int
    product_id: int
    seller_id: int
    price_cents: int
    condition: str
    stock_source: str
    warehouse_id: str | None
    available: int  # units in its warehouse now
    version: int
    updated_at: datetime
    # whether the variant is on sale (it, its product and the listing seller ACTIVE): an offer
    # of a variant the listing seller retired, of a deleted product or of a suspended
    # seller's, sells nothing
    on_sale: bool = True


_OFFER = """
SELECT o.variant_id, v.product_id, o.seller_id, o.price_cents, o.condition, o.stock_source,
       o.warehouse_id, o.version, o.updated_at,
       CASE WHEN o.warehouse_id IS NULL THEN o.available
            ELSE COALESCE((SELECT st.available FROM stock st WHERE st.variant_id = o.variant_id
                           AND st.warehouse_id = o.warehouse_id), 0) END AS available,
       (v.status = 'ACTIVE' AND p.status = 'ACTIVE' AND ls.status = 'ACTIVE') AS on_sale
FROM offers o JOIN product_variants v ON v.variant_id = o.variant_id
JOIN products p ON p.product_id = v.product_id
JOIN sellers ls ON ls.seller_id = p.seller_id
"""


def _offer(r: asyncpg.Record) -> OfferRecord:
    return OfferRecord(r["variant_id"], r["product_id"], r["seller_id"], r["price_cents"],
                       r["condition"], r["stock_source"], r["warehouse_id"], r["available"],
                       r["version"], r["updated_at"], r["on_sale"])


def offer_warehouse(seller_id: int, source: StockSource) -> str:
    """The warehouse holding a seller's units: its own (`seller`: it ships them, and states
    how many it has) or the platform's for it (`platform`: the platform's warehouse counts
    them through the internal inventory API)."""
    return f"{'s' if source == 'seller' else 'p'}-{seller_id}"


OFFER_LOCK_WAIT = "5s"  # what one write of an offer waits for another before a 409


@contextlib.asynccontextmanager
async def offer_lock(conn: Conn, seller_id: int, variant_id: int) -> AsyncIterator[None]:
    """One seller's writes of its offer of one variant, one at a time (a PostgreSQL advisory
    lock held by `conn` until the block ends; a connection that dies lets it go). A write
    meeting another in progress waits for it up to OFFER_LOCK_WAIT, then is refused (409
    `offer_busy`, retry): a pooled connection is never held waiting for longer."""
    key = f"offer:{variant_id}:{seller_id}"
    await conn.execute(f"SET lock_timeout = '{OFFER_LOCK_WAIT}'")
    try:
        await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", key)
    except asyncpg.exceptions.LockNotAvailableError as exc:
        raise Conflict("another write of this offer is in progress: retry",
                       "offer_busy") from exc
    finally:
        await conn.execute("RESET lock_timeout")
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)


async def prepare_offer(conn: Conn, seller_id: int, variant_id: int, source: StockSource,
                        expected_version: int | None) -> str:
    """Checks the seller may offer the variant (on sale, another seller's product; with
    `expected_version`, its offer is at that version) and makes sure the warehouse of its
    units exists; that warehouse's id. (`put_offer` checks the version again, under lock.)"""
    row = await conn.fetchrow(
        """SELECT p.seller_id FROM product_variants v JOIN products p USING (product_id)
           WHERE v.variant_id = $1 AND v.status = 'ACTIVE' AND p.status = 'ACTIVE'""",
        variant_id)
    if row is None:
        raise VariantNotForSale(f"variant {variant_id} is not for sale")
    if row["seller_id"] == seller_id:
        raise ValidationFailed({"variant_id": "is your own product's: its price is the "
                                              "variant's (PUT /api/v1/seller/products/{id})"},
                               "an offer is for another seller's product")
    if expected_version is not None:
        current = await conn.fetchval(
            "SELECT version FROM offers WHERE variant_id = $1 AND seller_id = $2",
            variant_id, seller_id)
        if current is None:
            raise OfferNotFound("no offer of yours for this variant to update")
        if current != expected_version:
            raise VersionConflict(current, expected_version, "the offer")
    warehouse = offer_warehouse(seller_id, source)
    owner = await conn.fetchval(
        """WITH made AS (
               INSERT INTO warehouses (warehouse_id, name, region, seller_id)
               VALUES ($1, $2, 'seller', $3) ON CONFLICT (warehouse_id) DO NOTHING
               RETURNING seller_id)
           SELECT seller_id FROM made UNION ALL
           SELECT seller_id FROM warehouses WHERE warehouse_id = $1 LIMIT 1""",
        warehouse, f"seller {seller_id} ({source})", seller_id)
    if owner is None:  # made by a concurrent first offer after this statement's snapshot
        owner = await conn.fetchval(
            "SELECT seller_id FROM warehouses WHERE warehouse_id = $1", warehouse)
    if owner != seller_id:
        raise Conflict(f"warehouse {warehouse} belongs to someone else", "warehouse_taken")
    return warehouse


async def put_offer(conn: Conn, seller_id: int, variant_id: int, price_cents: int,
                    condition: str, source: StockSource, expected_version: int | None,
                    quantity: int | None) -> tuple[OfferRecord, bool]:
    """Makes or replaces the seller's offer of the variant (True: made). Call
    `prepare_offer` first, and set the units in the partition before this. `quantity`, the
    units stated, is kept in the row (`available`: the audit shows it); the units sold from
    are the warehouse's."""
    warehouse = offer_warehouse(seller_id, source)
    async with conn.transaction():
        before = await conn.fetchrow(
            "SELECT version, to_jsonb(o.*)::text AS j FROM offers o "
            "WHERE variant_id = $1 AND seller_id = $2 FOR UPDATE", variant_id, seller_id)
        if expected_version is not None:
            if before is None:
                raise OfferNotFound("no offer of yours for this variant to update")
            if before["version"] != expected_version:
                raise VersionConflict(before["version"], expected_version, "the offer")
        after = await conn.fetchval(
            """INSERT INTO offers (variant_id, seller_id, price_cents, condition, stock_source,
                                   warehouse_id, available)
               VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, 0))
               ON CONFLICT (variant_id, seller_id) DO UPDATE
               SET price_cents = excluded.price_cents, condition = excluded.condition,
                   stock_source = excluded.stock_source, warehouse_id = excluded.warehouse_id,
                   available = CASE WHEN $7::int IS NULL AND offers.warehouse_id IS NOT NULL
                                    THEN offers.available ELSE COALESCE($7, 0) END,
                   version = offers.version + 1, updated_at = now()
               RETURNING to_jsonb(offers.*)::text""",
            variant_id, seller_id, price_cents, condition, source, warehouse, quantity)
        await _audit(conn, "offer", f"{variant_id}/{seller_id}",
                     "create" if before is None else "update", seller_actor(seller_id),
                     seller_id, None if before is None else before["j"], after)
    return await get_offer(conn, seller_id, variant_id), before is None


async def get_offer(conn: Conn, seller_id: int, variant_id: int) -> OfferRecord:
    row = await conn.fetchrow(_OFFER + " WHERE o.variant_id = $1 AND o.seller_id = $2",
                              variant_id, seller_id)
    if row is None:
        raise OfferNotFound(f"no offer of yours for variant {variant_id}")
    return _offer(row)


async def list_offers(conn: Conn, seller_id: int) -> list[OfferRecord]:
    rows = await conn.fetch(_OFFER + " WHERE o.seller_id = $1 ORDER BY o.variant_id",
                            seller_id)
    return [_offer(r) for r in rows]


async def delete_offer(conn: Conn, seller_id: int, variant_id: int) -> int:
    """Withdraws the offer (its units stay in its warehouse: holds on them still complete);
    the variant's product."""
    async with conn.transaction():
        gone = await conn.fetchrow(
            "DELETE FROM offers o USING product_variants v "
            "WHERE o.variant_id = $1 AND o.seller_id = $2 AND v.variant_id = o.variant_id "
            "RETURNING to_jsonb(o.*)::text AS j, v.product_id", variant_id, seller_id)
        if gone is None:
            raise OfferNotFound(f"no offer of yours for variant {variant_id}")
        await _audit(conn, "offer", f"{variant_id}/{seller_id}", "delete",
                     seller_actor(seller_id), seller_id, gone["j"], None)
        return int(gone["product_id"])


# -- deals ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DealRecord:
    deal: Deal
    name: str
    version: int
    created_at: datetime


_DEAL = ("SELECT deal_id, name, scope, scope_value, kind, amount, starts_at, ends_at, "
         "seller_id, version, created_at FROM deals")


def _deal(r: asyncpg.Record) -> DealRecord:
    return DealRecord(Deal(r["deal_id"], r["scope"], r["scope_value"], r["kind"], r["amount"],
                           r["starts_at"], r["ends_at"], r["seller_id"]),
                      r["name"], r["version"], r["created_at"])


async def _check_seller_scope(conn: Conn, seller_id: int, d: Deal) -> None:
    """A seller's deal discounts only its own sales, so any scope would do; a product scope
    must still name a product it sells (its own, or one it has an offer on), and a seller
    scope itself."""
    if d.scope == "seller" and d.scope_value != str(seller_id):
        raise ValidationFailed({"scope_value": "a seller deal's seller scope is yourself"})
    if d.scope == "product":
        sells = await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM products WHERE product_id = $1::bigint
                              AND seller_id = $2 AND status <> 'DELETED')
                   OR EXISTS (SELECT 1 FROM offers o JOIN product_variants v USING (variant_id)
                              WHERE v.product_id = $1::bigint AND o.seller_id = $2)""",
            int(d.scope_value), seller_id)
        if not sells:
            raise ValidationFailed({"scope_value": "not a product you sell"})
    if d.scope == "category" and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM categories WHERE category_id = $1::bigint)",
            int(d.scope_value)):
        raise ValidationFailed({"scope_value": "no such category"})


def _check_percent_off(kind: str, amount: int, what: str, given: str) -> None:
    """A percent deal or coupon takes at most MAX_DEAL_BP off (written from now on; stored
    ones keep loading)."""
    if kind == "percent" and amount > MAX_DEAL_BP:
        raise ValidationFailed({"amount": f"{what} takes at most {MAX_DEAL_BP} basis points "
                                          f"off: it never gives {given} away"})


async def _check_gives_nothing_away(conn: Conn, d: Deal) -> None:
    """A fixed deal on one product takes less than its lowest price (a deal never makes an
    item free: where it would, it does not apply, so a larger amount is a slip); a percent
    deal takes at most MAX_DEAL_BP off. Checked on writes only: deals stored before load."""
    _check_percent_off(d.kind, d.amount, "a deal", "an item")
    if d.scope != "product" or d.kind != "fixed":
        return
    lowest = await conn.fetchval(
        "SELECT min(price_cents) FROM product_variants WHERE product_id = $1::bigint "
        "AND status = 'ACTIVE'", int(d.scope_value))
    if lowest is not None and d.amount >= lowest:
        raise ValidationFailed({"amount": f"must be less than the product's lowest price "
                                          f"({lowest} cents): a deal never gives it away"})


async def create_deal(conn: Conn, d: Deal, name: str, actor: Actor) -> DealRecord:
    """`d.deal_id` is ignored (the database gives one)."""
    async with conn.transaction():
        if d.seller_id is not None:
            await _check_seller_scope(conn, d.seller_id, d)
        await _check_gives_nothing_away(conn, d)
        row = await conn.fetchrow(
            """INSERT INTO deals (name, scope, scope_value, kind, amount, starts_at, ends_at,
                                  seller_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
               RETURNING deal_id, to_jsonb(deals.*)::text AS j""",
            name, d.scope, d.scope_value, d.kind, d.amount, d.starts_at, d.ends_at, d.seller_id)
        assert row is not None
        await _audit(conn, "deal", str(row["deal_id"]), "create", actor, d.seller_id, None,
                     row["j"])
    return await get_deal(conn, row["deal_id"], d.seller_id)


async def get_deal(conn: Conn, deal_id: int, seller_id: int | None) -> DealRecord:
    """A deal; with `seller_id`, only that seller's."""
    row = await conn.fetchrow(_DEAL + " WHERE deal_id = $1 AND ($2::bigint IS NULL "
                              "OR seller_id = $2)", deal_id, seller_id)
    if row is None:
        raise DealNotFound(f"deal {deal_id} not found")
    return _deal(row)


async def list_deals(conn: Conn, seller_id: int | None, only_seller: bool,
                     live_at: datetime | None) -> list[DealRecord]:
    """Deals: a seller's own (`only_seller`), or all; with `live_at`, those not ended then."""
    rows = await conn.fetch(
        _DEAL + " WHERE (NOT $1 OR seller_id = $2) AND ($3::timestamptz IS NULL "
        "OR ends_at > $3) ORDER BY deal_id LIMIT 1000", only_seller, seller_id, live_at)
    return [_deal(r) for r in rows]


async def update_deal(conn: Conn, deal_id: int, d: Deal, name: str, actor: Actor,
                      owner: int | None, expected_version: int) -> DealRecord:
    """Replaces a deal (`owner`: only that seller's; None: the platform may change any)."""
    async with conn.transaction():
        before = await conn.fetchrow(
            "SELECT version, seller_id, to_jsonb(d.*)::text AS j FROM deals d "
            "WHERE deal_id = $1 AND ($2::bigint IS NULL OR seller_id = $2) FOR UPDATE",
            deal_id, owner)
        if before is None:
            raise DealNotFound(f"deal {deal_id} not found")
        if before["version"] != expected_version:
            raise VersionConflict(before["version"], expected_version, "the deal")
        if before["seller_id"] is not None:
            await _check_seller_scope(conn, before["seller_id"], d)
        await _check_gives_nothing_away(conn, d)
        after = await conn.fetchval(
            """UPDATE deals SET name = $2, scope = $3, scope_value = $4, kind = $5, amount = $6,
                                starts_at = $7, ends_at = $8, version = version + 1
               WHERE deal_id = $1 RETURNING to_jsonb(deals.*)::text""",
            deal_id, name, d.scope, d.scope_value, d.kind, d.amount, d.starts_at, d.ends_at)
        await _audit(conn, "deal", str(deal_id), "update", actor, before["seller_id"],
                     before["j"], after)
    return await get_deal(conn, deal_id, None)


async def delete_deal(conn: Conn, deal_id: int, actor: Actor, owner: int | None) -> None:
    async with conn.transaction():
        row = await conn.fetchrow(
            "DELETE FROM deals d WHERE deal_id = $1 AND ($2::bigint IS NULL OR seller_id = $2) "
            "RETURNING seller_id, to_jsonb(d.*)::text AS j", deal_id, owner)
        if row is None:
            raise DealNotFound(f"deal {deal_id} not found")
        await _audit(conn, "deal", str(deal_id), "delete", actor, row["seller_id"], row["j"],
                     None)


# -- coupons ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CouponRecord:
    coupon: Coupon
    times_used: int
    version: int
    created_at: datetime


_COUPON = ("SELECT code, scope, scope_value, kind, amount, min_spend_cents, "
           "per_customer_limit, global_limit, expires_at, starts_at, times_used, version, "
           "created_at FROM coupons")


def _coupon(r: asyncpg.Record) -> CouponRecord:
    c = Coupon(r["code"], r["scope"], r["scope_value"], r["kind"], r["amount"],
               r["min_spend_cents"], r["per_customer_limit"], r["global_limit"],
               r["expires_at"], r["starts_at"])
    return CouponRecord(c, r["times_used"], r["version"], r["created_at"])


async def create_coupon(conn: Conn, c: Coupon) -> CouponRecord:
    # as a deal's (a larger one would be cut to its lines' cost less a cent: coupon_discount)
    _check_percent_off(c.kind, c.amount, "a coupon", "an order")
    async with conn.transaction():
        after = await conn.fetchval(
            """INSERT INTO coupons (code, scope, scope_value, kind, amount, min_spend_cents,
                                    per_customer_limit, global_limit, expires_at, starts_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (code) DO NOTHING RETURNING to_jsonb(coupons.*)::text""",
            c.code, c.scope, c.scope_value, c.kind, c.amount, c.min_spend_cents,
            c.per_customer_limit, c.global_limit, c.expires_at, c.starts_at)
        if after is None:
            raise Conflict(f"coupon {c.code} exists", "coupon_exists", {"code": "exists"})
        await _audit(conn, "coupon", c.code, "create", "platform", None, None, after)
    return await get_coupon(conn, c.code)


async def get_coupon(conn: Conn, code: str) -> CouponRecord:
    row = await conn.fetchrow(_COUPON + " WHERE code = $1", code)
    if row is None:
        raise NotFound(f"no coupon {code}")
    return _coupon(row)


async def list_coupons(conn: Conn, live_at: datetime | None) -> list[CouponRecord]:
    rows = await conn.fetch(_COUPON + " WHERE $1::timestamptz IS NULL OR expires_at > $1 "
                            "ORDER BY code LIMIT 1000", live_at)
    return [_coupon(r) for r in rows]


async def update_coupon(conn: Conn, c: Coupon, expected_version: int) -> CouponRecord:
    """Replaces everything but the code and its use count. A global limit below the uses so
    far is refused (field global_limit)."""
    _check_percent_off(c.kind, c.amount, "a coupon", "an order")
    async with conn.transaction():
        before = await conn.fetchrow(
            "SELECT version, times_used, to_jsonb(c.*)::text AS j FROM coupons c "
            "WHERE code = $1 FOR UPDATE", c.code)
        if before is None:
            raise NotFound(f"no coupon {c.code}")
        if before["version"] != expected_version:
            raise VersionConflict(before["version"], expected_version, "the coupon")
        if c.global_limit is not None and c.global_limit < before["times_used"]:
            raise ValidationFailed({"global_limit": f"below the {before['times_used']} uses "
                                                    f"so far"})
        after = await conn.fetchval(
            """UPDATE coupons SET scope = $2, scope_value = $3, kind = $4, amount = $5,
                   min_spend_cents = $6, per_customer_limit = $7, global_limit = $8,
                   expires_at = $9, starts_at = $10, version = version + 1
               WHERE code = $1 RETURNING to_jsonb(coupons.*)::text""",
            c.code, c.scope, c.scope_value, c.kind, c.amount, c.min_spend_cents,
            c.per_customer_limit, c.global_limit, c.expires_at, c.starts_at)
        await _audit(conn, "coupon", c.code, "update", "platform", None, before["j"], after)
    return await get_coupon(conn, c.code)


async def end_coupon(conn: Conn, code: str) -> CouponRecord:
    """Ends a coupon now (its redemptions stay, so the row does too); again: no change."""
    async with conn.transaction():
        before = await conn.fetchval(
            "SELECT to_jsonb(c.*)::text FROM coupons c WHERE code = $1 FOR UPDATE", code)
        if before is None:
            raise NotFound(f"no coupon {code}")
        after = await conn.fetchval(
            """UPDATE coupons SET expires_at = now(), version = version + 1,
                   starts_at = CASE WHEN starts_at >= now() THEN NULL ELSE starts_at END
               WHERE code = $1 AND expires_at > now() RETURNING to_jsonb(coupons.*)::text""",
            code)
        if after is not None:
            await _audit(conn, "coupon", code, "delete", "platform", None, before, after)
    return await get_coupon(conn, code)


# -- dynamic pricing rules --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RuleRecord:
    rule: DynamicRule
    enabled: bool
    version: int
    updated_at: datetime


_RULE = """
SELECT r.*, p.seller_id FROM dynamic_price_rules r
JOIN product_variants v ON v.variant_id = r.variant_id
JOIN products p ON p.product_id = v.product_id
"""
_RULE_FIELDS = ("floor_cents", "ceiling_cents", "low_stock", "high_stock", "hot_velocity",
                "cold_velocity", "step_up_bp", "step_down_bp", "window_s")


def _rule(r: asyncpg.Record) -> RuleRecord:
    return RuleRecord(DynamicRule(r["variant_id"], r["seller_id"],
                                  *(r[f] for f in _RULE_FIELDS)),
                      r["enabled"], r["version"], r["updated_at"])


async def rule_seller(conn: Conn, variant_id: int) -> int:
    """The listing seller of a variant (rules price its own sales); 404 if none."""
    found = await conn.fetchval(
        """SELECT p.seller_id FROM product_variants v JOIN products p USING (product_id)
           WHERE v.variant_id = $1 AND p.status <> 'DELETED'""", variant_id)
    if found is None:
        raise VariantNotForSale(f"variant {variant_id} not found")
    return int(found)


async def put_rule(conn: Conn, r: DynamicRule, enabled: bool,
                   expected_version: int | None) -> tuple[RuleRecord, bool]:
    async with conn.transaction():
        before = await conn.fetchrow(
            "SELECT version, to_jsonb(r.*)::text AS j FROM dynamic_price_rules r "
            "WHERE variant_id = $1 FOR UPDATE", r.variant_id)
        if expected_version is not None:
            if before is None:
                raise RuleNotFound(f"no rule for variant {r.variant_id}")
            if before["version"] != expected_version:
                raise VersionConflict(before["version"], expected_version, "the rule")
        values = [getattr(r, f) for f in _RULE_FIELDS]
        after = await conn.fetchval(
            f"""INSERT INTO dynamic_price_rules (variant_id, {", ".join(_RULE_FIELDS)}, enabled)
                VALUES ($1, {", ".join(f"${i + 2}" for i in range(len(_RULE_FIELDS)))},
                        ${len(_RULE_FIELDS) + 2})
                ON CONFLICT (variant_id) DO UPDATE SET
                    {", ".join(f"{f} = excluded.{f}" for f in _RULE_FIELDS)},
                    enabled = excluded.enabled, version = dynamic_price_rules.version + 1,
                    updated_at = now()
                RETURNING to_jsonb(dynamic_price_rules.*)::text""",
            r.variant_id, *values, enabled)
        await _audit(conn, "rule", str(r.variant_id), "create" if before is None else "update",
                     "platform", r.seller_id, None if before is None else before["j"], after)
    return await get_rule(conn, r.variant_id), before is None


async def get_rule(conn: Conn, variant_id: int) -> RuleRecord:
    row = await conn.fetchrow(_RULE + " WHERE r.variant_id = $1", variant_id)
    if row is None:
        raise RuleNotFound(f"no rule for variant {variant_id}")
    return _rule(row)


async def list_rules(conn: Conn, product_id: int | None) -> list[RuleRecord]:
    rows = await conn.fetch(_RULE + " WHERE $1::bigint IS NULL OR v.product_id = $1 "
                            "ORDER BY r.variant_id LIMIT 1000", product_id)
    return [_rule(r) for r in rows]


async def delete_rule(conn: Conn, variant_id: int) -> None:
    async with conn.transaction():
        row = await conn.fetchrow(
            """DELETE FROM dynamic_price_rules r WHERE variant_id = $1
               RETURNING to_jsonb(r.*)::text AS j,
                         (SELECT p.seller_id FROM product_variants v JOIN products p
                          USING (product_id) WHERE v.variant_id = $1) AS seller_id""",
            variant_id)
        if row is None:
            raise RuleNotFound(f"no rule for variant {variant_id}")
        await _audit(conn, "rule", str(variant_id), "delete", "platform", row["seller_id"],
                     row["j"], None)


async def floors_above(conn: Conn, prices: dict[int, int]) -> dict[int, int]:
    """Of these variant prices, those below their enabled rule's floor: variant -> floor."""
    if not prices:
        return {}
    rows = await conn.fetch(
        "SELECT variant_id, floor_cents FROM dynamic_price_rules "
        "WHERE enabled AND variant_id = ANY($1::bigint[])", list(prices))
    return {r["variant_id"]: r["floor_cents"] for r in rows
            if prices[r["variant_id"]] < r["floor_cents"]}


# -- the audit --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AuditEntry:
    audit_id: int
    entity: str
    entity_key: str
    action: str
    actor: str
    before: object
    after: object
    at: datetime


async def audit_log(conn: Conn, entity: str | None, key: str | None, seller_id: int | None,
                    before_id: int | None, limit: int) -> list[AuditEntry]:
    """Newest first; with `seller_id`, only what concerns that seller's offers and deals."""
    rows = await conn.fetch(
        """SELECT audit_id, entity, entity_key, action, actor, before::text AS b,
                  after::text AS a, at FROM pricing_audit
           WHERE ($1::text IS NULL OR entity = $1) AND ($2::text IS NULL OR entity_key = $2)
             AND ($3::bigint IS NULL OR (seller_id = $3 AND entity IN ('offer', 'deal')))
             AND ($4::bigint IS NULL OR audit_id < $4)
           ORDER BY audit_id DESC LIMIT $5""", entity, key, seller_id, before_id, limit)
    return [AuditEntry(r["audit_id"], r["entity"], r["entity_key"], r["action"], r["actor"],
                       None if r["b"] is None else json.loads(r["b"]),
                       None if r["a"] is None else json.loads(r["a"]), r["at"])
            for r in rows]
