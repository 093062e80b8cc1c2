"""The pricing and promotions API.

Sellers (their API key): their offers of other sellers' products (price, condition, where
the units come from, how many) and their own deals. The platform (internal token): platform
deals, coupons and dynamic pricing rules. Every change is validated, versioned (ETag /
If-Match) and audited (`GET .../pricing/audit`); offers, deals and rules reach search and
product pages through the outbox within a second or so. See docs/operations.md, "Pricing".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from adapters.postgres import Conn
from adapters.postgres import pricing_admin as admin
from adapters.postgres.pricing_admin import (
    AuditEntry,
    CouponRecord,
    DealRecord,
    OfferRecord,
    RuleRecord,
)
from domain.errors import PreconditionRequired, ValidationFailed
from domain.pricing import Coupon, Deal, DynamicRule, normalize_code
from serve.routes.seller import _etag, expected_version
from serve.services import Internal, Json, Seller, Svc, limit_seller

seller_router = APIRouter(tags=["seller pricing"], dependencies=[Depends(limit_seller)])
platform_router = APIRouter(tags=["platform pricing"])

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Cents = Annotated[StrictInt, Field(ge=0, le=10**11)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200,
                                        pattern=r"^[^\x00-\x1f\x7f]*$")]
CodePath = Annotated[str, Path(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
MAX_WINDOW = timedelta(days=366)  # a deal or coupon runs at most a year, starting within one
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


def _version(if_match: str | None, required: bool) -> int | None:
    """The version If-Match names (the seller API's parser); 428 when required and absent."""
    if if_match is None and required:
        raise PreconditionRequired("send the version you read in If-Match (its ETag)")
    return expected_version(if_match, None)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat()


def _id_text(value: str) -> str | None:
    """An id as the database writes it (no leading zeros), or None if it is not one."""
    if not re.fullmatch(r"[0-9]{1,19}", value) or not 1 <= int(value) <= 2**63 - 1:
        return None
    return str(int(value))


def _window(starts_at: datetime | None, ends_at: datetime, end_field: str) -> dict[str, str]:
    """Windows that make sense: ending in the future, after they start, at most a year long,
    starting within a year."""
    now = datetime.now(UTC)
    problems: dict[str, str] = {}
    if ends_at <= now:
        problems[end_field] = "must be in the future"
    if starts_at is not None:
        if ends_at <= starts_at:
            problems[end_field] = "must be after starts_at"
        elif ends_at - starts_at > MAX_WINDOW:
            problems[end_field] = "at most 366 days after starts_at"
        if starts_at > now + MAX_WINDOW:
            problems["starts_at"] = "at most 366 days from now"
    elif ends_at > now + MAX_WINDOW:  # running from now
        problems[end_field] = "at most 366 days from now"
    return problems


# -- offers -----------------------------------------------------------------------------------
class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price_cents: StrictInt = Field(ge=1, le=10**11, description="one unit, in cents")
    condition: Literal["new", "refurbished", "used"] = "new"
    stock_source: Literal["seller", "platform"] = Field(
        default="seller", description="seller: you ship them and state how many (`quantity`); "
        "platform: the platform's warehouse holds and counts them")
    quantity: StrictInt | None = Field(default=None, ge=0, le=1_000_000,
                                 description="units you have on hand, holds included "
                                 "(stock_source seller): what can be sold is this less the "
                                 "units shoppers hold now")


def _offer(o: OfferRecord) -> Json:
    return {"variant_id": str(o.variant_id), "product_id": str(o.product_id),
            "seller_id": str(o.seller_id), "price_cents": o.price_cents,
            "condition": o.condition, "stock_source": o.stock_source,
            "warehouse_id": o.warehouse_id, "available": o.available, "version": o.version,
            "updated_at": _iso(o.updated_at), "on_sale": o.on_sale}


@seller_router.get("/api/v1/seller/offers")
async def list_offers(svc: Svc, seller_id: Seller) -> Json:
    """Your offers of other sellers' products, with the units each has now."""
    async with svc.pool.acquire() as conn:
        return {"offers": [_offer(o) for o in await admin.list_offers(conn, seller_id)]}


@seller_router.get("/api/v1/seller/offers/{variant_id}")
async def get_offer(svc: Svc, seller_id: Seller, variant_id: Id, response: Response) -> Json:
    async with svc.pool.acquire() as conn:
        o = await admin.get_offer(conn, seller_id, variant_id)
    _etag(response, o.version)
    return _offer(o)


@seller_router.put("/api/v1/seller/offers/{variant_id}")
async def put_offer(svc: Svc, seller_id: Seller, variant_id: Id, body: OfferIn,
                    response: Response,
                    if_match: Annotated[str | None, Header()] = None) -> Json:
    """Makes (201) or replaces (200; If-Match optional) your offer of another seller's
    variant. With `quantity` (stock_source seller), your units are set to it first, through
    the inventory partition that owns the variant: the offer that wins the buy box is
    reserved from them."""
    if body.quantity is not None and body.stock_source == "platform":
        raise ValidationFailed({"quantity": "platform-held units are counted by the "
                                            "platform's warehouse, not stated by the seller"})
    expected = _version(if_match, required=False)
    # the check, the units (in the partition) and the offer row are three writes: one
    # seller's writes of one offer take turns, so a request refused for its version sets no
    # units, and the units left are those of the offer row written last
    async with svc.pool.acquire() as conn, admin.offer_lock(conn, seller_id, variant_id):
        warehouse = await admin.prepare_offer(conn, seller_id, variant_id, body.stock_source,
                                              expected)
        if body.quantity is not None:
            await svc.inventory.adjust(variant_id, warehouse, body.quantity,
                                       f"offer stock stated by seller {seller_id}",
                                       absolute=True)
        o, made = await admin.put_offer(conn, seller_id, variant_id, body.price_cents,
                                        body.condition, body.stock_source, expected,
                                        body.quantity)
    await svc.pages.written([o.product_id])  # its buy box
    response.status_code = 201 if made else 200
    _etag(response, o.version)
    return _offer(o)


@seller_router.delete("/api/v1/seller/offers/{variant_id}")
async def delete_offer(svc: Svc, seller_id: Seller, variant_id: Id) -> Json:
    """Withdraws the offer (holds already made on its units still complete)."""
    async with svc.pool.acquire() as conn, admin.offer_lock(conn, seller_id, variant_id):
        product_id = await admin.delete_offer(conn, seller_id, variant_id)
    await svc.pages.written([product_id])  # its buy box
    return {"variant_id": str(variant_id), "deleted": True}


# -- deals ------------------------------------------------------------------------------------
class DealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = ""
    scope: Literal["product", "category", "brand", "seller"]
    scope_value: str = Field(min_length=1, max_length=200, pattern=_PRINTABLE,
                             description="product, category or seller id; or the brand")
    kind: Literal["percent", "fixed"]
    amount: StrictInt = Field(ge=1, le=10**11, description="basis points (1500 = 15%) or cents")
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    def deal(self, seller_id: int | None) -> Deal:
        problems = _window(self.starts_at, self.ends_at, "ends_at")
        value = self.scope_value.strip()
        if self.scope != "brand":
            value = _id_text(value) or ""
            if not value:
                problems["scope_value"] = f"must be a {self.scope} id"
        elif not value:
            problems["scope_value"] = "must be a brand"
        if problems:
            raise ValidationFailed(problems)
        return Deal(0, self.scope, value, self.kind, self.amount, self.starts_at,
                    self.ends_at, seller_id)


def _deal(r: DealRecord) -> Json:
    d = r.deal
    return {"deal_id": str(d.deal_id), "name": r.name, "scope": d.scope,
            "scope_value": d.scope_value, "kind": d.kind, "amount": d.amount,
            "starts_at": _iso(d.starts_at), "ends_at": _iso(d.ends_at),
            "seller_id": None if d.seller_id is None else str(d.seller_id),
            "version": r.version, "created_at": _iso(r.created_at)}


async def _list_deals(svc: Svc, seller_id: int | None, live: bool) -> Json:
    async with svc.pool.acquire() as conn:
        found = await admin.list_deals(conn, seller_id, seller_id is not None,
                                       datetime.now(UTC) if live else None)
    return {"deals": [_deal(d) for d in found]}


Live = Annotated[bool, Query(description="only deals that have not ended")]


@seller_router.get("/api/v1/seller/deals")
async def list_seller_deals(svc: Svc, seller_id: Seller, live: Live = False) -> Json:
    return await _list_deals(svc, seller_id, live)


@seller_router.post("/api/v1/seller/deals", status_code=201)
async def create_seller_deal(svc: Svc, seller_id: Seller, body: DealIn,
                             response: Response) -> Json:
    """A deal on what you sell: it discounts your own sales only (your products', and your
    offers of other sellers' products), never below a dynamic pricing floor."""
    async with svc.pool.acquire() as conn:
        r = await admin.create_deal(conn, body.deal(seller_id), body.name,
                                    admin.seller_actor(seller_id))
    _etag(response, r.version)
    return _deal(r)


@seller_router.get("/api/v1/seller/deals/{deal_id}")
async def get_seller_deal(svc: Svc, seller_id: Seller, deal_id: Id, response: Response) -> Json:
    async with svc.pool.acquire() as conn:
        r = await admin.get_deal(conn, deal_id, seller_id)
    _etag(response, r.version)
    return _deal(r)


@seller_router.put("/api/v1/seller/deals/{deal_id}")
async def update_seller_deal(svc: Svc, seller_id: Seller, deal_id: Id, body: DealIn,
                             response: Response,
                             if_match: Annotated[str | None, Header()] = None) -> Json:
    """Replaces one of your deals (If-Match: the version you read)."""
    expected = _version(if_match, required=True)
    assert expected is not None
    async with svc.pool.acquire() as conn:
        r = await admin.update_deal(conn, deal_id, body.deal(seller_id), body.name,
                                    admin.seller_actor(seller_id), seller_id, expected)
    _etag(response, r.version)
    return _deal(r)


@seller_router.delete("/api/v1/seller/deals/{deal_id}")
async def delete_seller_deal(svc: Svc, seller_id: Seller, deal_id: Id) -> Json:
    async with svc.pool.acquire() as conn:
        await admin.delete_deal(conn, deal_id, admin.seller_actor(seller_id), seller_id)
    return {"deal_id": str(deal_id), "deleted": True}


@platform_router.get("/api/v1/internal/pricing/deals")
async def list_platform_deals(svc: Svc, _: Internal, live: Live = False) -> Json:
    """Every deal, the platform's and sellers'."""
    return await _list_deals(svc, None, live)


@platform_router.post("/api/v1/internal/pricing/deals", status_code=201)
async def create_platform_deal(svc: Svc, _: Internal, body: DealIn, response: Response) -> Json:
    """A platform deal: every seller's sales in its scope."""
    deal = body.deal(None)
    async with svc.pool.acquire() as conn:
        await _check_exists(conn, deal.scope, deal.scope_value)
        r = await admin.create_deal(conn, deal, body.name, "platform")
    _etag(response, r.version)
    return _deal(r)


@platform_router.get("/api/v1/internal/pricing/deals/{deal_id}")
async def get_platform_deal(svc: Svc, _: Internal, deal_id: Id, response: Response) -> Json:
    async with svc.pool.acquire() as conn:
        r = await admin.get_deal(conn, deal_id, None)
    _etag(response, r.version)
    return _deal(r)


@platform_router.put("/api/v1/internal/pricing/deals/{deal_id}")
async def update_platform_deal(svc: Svc, _: Internal, deal_id: Id, body: DealIn,
                               response: Response,
                               if_match: Annotated[str | None, Header()] = None) -> Json:
    """Replaces any deal (a seller's stays that seller's)."""
    expected = _version(if_match, required=True)
    assert expected is not None
    async with svc.pool.acquire() as conn:
        current = await admin.get_deal(conn, deal_id, None)
        deal = body.deal(current.deal.seller_id)
        await _check_exists(conn, deal.scope, deal.scope_value)
        r = await admin.update_deal(conn, deal_id, deal, body.name, "platform", None, expected)
    _etag(response, r.version)
    return _deal(r)


@platform_router.delete("/api/v1/internal/pricing/deals/{deal_id}")
async def delete_platform_deal(svc: Svc, _: Internal, deal_id: Id) -> Json:
    async with svc.pool.acquire() as conn:
        await admin.delete_deal(conn, deal_id, "platform", None)
    return {"deal_id": str(deal_id), "deleted": True}


async def _check_exists(conn: Conn, scope: str, value: str | None) -> None:
    """The product, category or seller a (validated) scope names exists (422 naming
    scope_value)."""
    table = {"product": "products WHERE product_id", "category": "categories WHERE "
             "category_id", "seller": "sellers WHERE seller_id"}.get(scope)
    if table is None or value is None:
        return  # brand or cart
    if not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} = $1::bigint)",
                               int(value)):
        raise ValidationFailed({"scope_value": f"no such {scope}"})


# -- coupons ----------------------------------------------------------------------------------
class CouponIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["cart", "product", "category", "brand", "seller"] = "cart"
    scope_value: str | None = Field(default=None, min_length=1, max_length=200,
                                    pattern=_PRINTABLE)
    kind: Literal["percent", "fixed"]
    amount: StrictInt = Field(ge=1, le=10**11, description="basis points (1500 = 15%) or cents")
    min_spend_cents: Cents = 0
    per_customer_limit: StrictInt | None = Field(default=None, ge=1, le=10**6)
    global_limit: StrictInt | None = Field(default=None, ge=1, le=10**9)
    starts_at: AwareDatetime | None = None
    expires_at: AwareDatetime

    def coupon(self, code: str) -> Coupon:
        problems = _window(self.starts_at, self.expires_at, "expires_at")
        value = self.scope_value
        if self.scope == "brand" and value is not None:
            value = value.strip()
        if (self.scope == "cart") != (value is None) or value == "":
            problems["scope_value"] = "required for every scope but cart, and only then"
        elif self.scope not in ("cart", "brand"):
            value = _id_text(value or "")
            if value is None:
                problems["scope_value"] = f"must be a {self.scope} id"
        if problems:
            raise ValidationFailed(problems)
        return Coupon(code, self.scope, value, self.kind, self.amount,
                      self.min_spend_cents, self.per_customer_limit, self.global_limit,
                      self.expires_at, self.starts_at)


class NewCouponIn(CouponIn):
    code: str = Field(min_length=3, max_length=32, pattern=r"^\s*[A-Za-z0-9_-]{3,32}\s*$",
                      description="letters, digits, _ and -; stored upper case")


def _coupon(r: CouponRecord) -> Json:
    c = r.coupon
    return {"code": c.code, "scope": c.scope, "scope_value": c.scope_value, "kind": c.kind,
            "amount": c.amount, "min_spend_cents": c.min_spend_cents,
            "per_customer_limit": c.per_customer_limit, "global_limit": c.global_limit,
            "starts_at": _iso(c.starts_at), "expires_at": _iso(c.expires_at),
            "times_used": r.times_used, "version": r.version, "created_at": _iso(r.created_at)}


@platform_router.get("/api/v1/internal/pricing/coupons")
async def list_coupons(svc: Svc, _: Internal, live: Live = False) -> Json:
    async with svc.pool.acquire() as conn:
        found = await admin.list_coupons(conn, datetime.now(UTC) if live else None)
    return {"coupons": [_coupon(c) for c in found]}


@platform_router.post("/api/v1/internal/pricing/coupons", status_code=201)
async def create_coupon(svc: Svc, _: Internal, body: NewCouponIn, response: Response) -> Json:
    """A coupon code (409 if it exists): its scope, discount, minimum spend, limits (per
    customer, in all) and validity."""
    coupon = body.coupon(normalize_code(body.code))
    async with svc.pool.acquire() as conn:
        await _check_exists(conn, coupon.scope, coupon.scope_value)
        r = await admin.create_coupon(conn, coupon)
    _etag(response, r.version)
    return _coupon(r)


@platform_router.get("/api/v1/internal/pricing/coupons/{code}")
async def get_coupon(svc: Svc, _: Internal, code: CodePath, response: Response) -> Json:
    async with svc.pool.acquire() as conn:
        r = await admin.get_coupon(conn, normalize_code(code))
    _etag(response, r.version)
    return _coupon(r)


@platform_router.put("/api/v1/internal/pricing/coupons/{code}")
async def update_coupon(svc: Svc, _: Internal, code: CodePath, body: CouponIn,
                        response: Response,
                        if_match: Annotated[str | None, Header()] = None) -> Json:
    """Replaces a coupon's terms (If-Match); its uses so far stay (a global limit below them
    is refused)."""
    expected = _version(if_match, required=True)
    assert expected is not None
    coupon = body.coupon(normalize_code(code))
    async with svc.pool.acquire() as conn:
        await _check_exists(conn, coupon.scope, coupon.scope_value)
        r = await admin.update_coupon(conn, coupon, expected)
    _etag(response, r.version)
    return _coupon(r)


@platform_router.delete("/api/v1/internal/pricing/coupons/{code}")
async def end_coupon(svc: Svc, _: Internal, code: CodePath) -> Json:
    """Ends the coupon now: it can no longer be used; its record and uses stay."""
    async with svc.pool.acquire() as conn:
        return _coupon(await admin.end_coupon(conn, normalize_code(code)))


# -- dynamic pricing rules --------------------------------------------------------------------
class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    floor_cents: Cents
    ceiling_cents: Cents
    low_stock: StrictInt = Field(ge=0, le=10**9)
    high_stock: StrictInt = Field(ge=1, le=10**9)
    hot_velocity: StrictInt = Field(ge=1, le=10**9)
    cold_velocity: StrictInt = Field(ge=0, le=10**9)
    step_up_bp: StrictInt = Field(ge=0, le=5000)
    step_down_bp: StrictInt = Field(ge=0, le=5000)
    window_s: StrictInt = Field(default=86_400, ge=60, le=90 * 86_400)
    enabled: StrictBool = True


def _rule(r: RuleRecord) -> Json:
    x = r.rule
    return {"variant_id": str(x.variant_id), "seller_id": str(x.seller_id),
            "floor_cents": x.floor_cents, "ceiling_cents": x.ceiling_cents,
            "low_stock": x.low_stock, "high_stock": x.high_stock,
            "hot_velocity": x.hot_velocity, "cold_velocity": x.cold_velocity,
            "step_up_bp": x.step_up_bp, "step_down_bp": x.step_down_bp,
            "window_s": x.window_s, "enabled": r.enabled, "version": r.version,
            "updated_at": _iso(r.updated_at)}


@platform_router.get("/api/v1/internal/pricing/rules")
async def list_rules(svc: Svc, _: Internal,
                     product_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None
                     ) -> Json:
    async with svc.pool.acquire() as conn:
        return {"rules": [_rule(r) for r in await admin.list_rules(conn, product_id)]}


@platform_router.get("/api/v1/internal/pricing/rules/{variant_id}")
async def get_rule(svc: Svc, _: Internal, variant_id: Id, response: Response) -> Json:
    async with svc.pool.acquire() as conn:
        r = await admin.get_rule(conn, variant_id)
    _etag(response, r.version)
    return _rule(r)


@platform_router.put("/api/v1/internal/pricing/rules/{variant_id}")
async def put_rule(svc: Svc, _: Internal, variant_id: Id, body: RuleIn, response: Response,
                   if_match: Annotated[str | None, Header()] = None) -> Json:
    """Makes (201) or replaces (200) the variant's dynamic pricing rule: the repricer moves
    its list price within [floor, ceiling], and every price shown or charged is kept in
    them (a deal never takes it below the floor)."""
    expected = _version(if_match, required=False)
    async with svc.pool.acquire() as conn:
        seller = await admin.rule_seller(conn, variant_id)
        rule = DynamicRule(variant_id, seller, body.floor_cents, body.ceiling_cents,
                           body.low_stock, body.high_stock, body.hot_velocity,
                           body.cold_velocity, body.step_up_bp, body.step_down_bp,
                           body.window_s)
        r, made = await admin.put_rule(conn, rule, body.enabled, expected)
    response.status_code = 201 if made else 200
    _etag(response, r.version)
    return _rule(r)


@platform_router.delete("/api/v1/internal/pricing/rules/{variant_id}")
async def delete_rule(svc: Svc, _: Internal, variant_id: Id) -> Json:
    async with svc.pool.acquire() as conn:
        await admin.delete_rule(conn, variant_id)
    return {"variant_id": str(variant_id), "deleted": True}


# -- the audit --------------------------------------------------------------------------------
def _entry(e: AuditEntry) -> Json:
    return {"audit_id": str(e.audit_id), "entity": e.entity, "key": e.entity_key,
            "action": e.action, "actor": e.actor, "before": e.before, "after": e.after,
            "at": _iso(e.at)}


EntityQ = Annotated[Literal["offer", "deal", "coupon", "rule"] | None, Query()]
Limit = Annotated[int, Query(ge=1, le=500)]
Before = Annotated[int | None, Query(ge=1, le=2**63 - 1, description="older than this id")]


@platform_router.get("/api/v1/internal/pricing/audit")
async def platform_audit(svc: Svc, _: Internal, entity: EntityQ = None,
                         key: Annotated[str | None, Query(max_length=200,
                                                          pattern=_PRINTABLE)] = None,
                         before: Before = None, limit: Limit = 100) -> Json:
    """Every pricing change, newest first: who, what, before and after."""
    async with svc.pool.acquire() as conn:
        found = await admin.audit_log(conn, entity, key, None, before, limit)
    return {"entries": [_entry(e) for e in found]}


@seller_router.get("/api/v1/seller/pricing/audit")
async def seller_audit(svc: Svc, seller_id: Seller, entity: EntityQ = None,
                       before: Before = None, limit: Limit = 100) -> Json:
    """The changes to your offers and deals, newest first."""
    async with svc.pool.acquire() as conn:
        found = await admin.audit_log(conn, entity, None, seller_id, before, limit)
    return {"entries": [_entry(e) for e in found]}


router = APIRouter()
router.include_router(seller_router)
router.include_router(platform_router)
