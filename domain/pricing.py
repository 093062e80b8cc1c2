"""Pricing rules: pure functions over integer cents (no I/O, no Ray, no await).

Money is integer cents; percentages are basis points (1500 = 15.00%), and a percentage of a
price is rounded half up to the cent. Times are timezone-aware datetimes, passed in (`now`).

A line's unit price goes through these steps, each recorded in the quote:

  list     the price of the offer bought: the product seller's variant price (which the
           dynamic-pricing actor moves on a schedule with `dynamic_price`, recording each change),
           or another seller's offer price.
  deal     the one active deal that gives the lowest price (deals never stack), never below 0.
  dynamic  if the variant has a dynamic rule for this seller, the price is clamped into
           [floor, ceiling]. So a deal never takes the unit price below the floor: a deal that
           would is cut back to the floor (the floor is the lowest unit price the seller
           accepts), and a list price above the ceiling is sold at the ceiling. PDP and search
           show this same unit price (`unit_price`), so they never show what a quote won't charge.
  coupon   an order-level discount, split across the lines it applies to by largest remainder
           (exact cents). It may take a line below the floor (the floor bounds the unit price,
           the coupon reduces what the order pays) but never below 0.

Quote tokens are HMAC-SHA256 over canonical JSON, so checkout charges exactly what was quoted.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, get_args

from domain.errors import ConfigError, ValidationFailed

Scope = Literal["product", "category", "brand", "seller"]
CouponScope = Literal["cart", "product", "category", "brand", "seller"]
Kind = Literal["percent", "fixed"]
CURRENCY = "USD"
FULL_BP = 10_000
MAX_LINES = 100
MAX_LINE_QUANTITY = 10_000
MAX_TOKEN_CHARS = 65_536


def _pct(cents: int, bp: int) -> int:
    """`bp` basis points of `cents`, rounded half up."""
    return (cents * bp + FULL_BP // 2) // FULL_BP


def _discounted(kind: str, amount: int, cents: int) -> int:
    return max(0, cents - (_pct(cents, amount) if kind == "percent" else amount))


def _check(problems: dict[str, str]) -> None:
    if problems:
        raise ValidationFailed(problems)


def _kind_problems(kind: str, amount: int) -> dict[str, str]:
    if kind not in get_args(Kind):
        return {"kind": "must be percent or fixed"}
    if kind == "percent" and not 1 <= amount <= FULL_BP:
        return {"amount": "percent amounts are basis points, 1 to 10000"}
    if kind == "fixed" and amount < 1:
        return {"amount": "fixed amounts are cents, at least 1"}
    return {}


def _aware(**times: datetime) -> dict[str, str]:
    return {k: "must be timezone-aware" for k, t in times.items() if t.tzinfo is None}


@dataclasses.dataclass(frozen=True)
class Offer:
    """One seller's offer of a variant (the product's own seller has one too)."""

    seller_id: int
    variant_id: int
    price_cents: int
    available: int
    seller_rating: float | None = None


@dataclasses.dataclass(frozen=True)
class Item:
    """What the rules need to know about a variant as sold by one seller."""

    variant_id: int
    product_id: int
    seller_id: int
    list_price_cents: int
    category_ids: frozenset[int] = frozenset()  # the product's category and its ancestors
    brand: str | None = None

    def sold_by(self, offer: Offer) -> Item:
        """The same variant bought through `offer`: that seller, at that seller's price."""
        if offer.variant_id != self.variant_id:
            raise ValidationFailed({"seller_id": f"offer is for variant {offer.variant_id}"})
        return dataclasses.replace(self, seller_id=offer.seller_id,
                                   list_price_cents=offer.price_cents)


def _applies(scope: str, value: str | None, item: Item) -> bool:
    if scope == "cart":
        return True
    if scope == "brand":
        return item.brand is not None and item.brand.casefold() == (value or "").casefold()
    if scope == "category":
        return any(str(c) == value for c in item.category_ids)
    return value == str(item.product_id if scope == "product" else item.seller_id)


# -- buy box --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class BuyBox:
    winner: Offer | None  # None when no offer has stock
    others: tuple[Offer, ...]  # every other offer, in buy-box order, those without stock last


def buy_box(offers: Iterable[Offer]) -> BuyBox:
    """Among offers with stock: lowest price, then best seller rating (unrated last), then
    lowest seller id."""
    ranked = sorted(offers, key=lambda o: (o.available <= 0, o.price_cents,
                                           -(o.seller_rating if o.seller_rating is not None
                                             else -1.0), o.seller_id))
    if ranked and ranked[0].available > 0:
        return BuyBox(ranked[0], tuple(ranked[1:]))
    return BuyBox(None, tuple(ranked))


# -- deals ----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Deal:
    """A time-boxed discount on every item in its scope, active in [starts_at, ends_at).
    `scope_value`: the product, category or seller id as text, or the brand (any case)."""

    deal_id: int
    scope: Scope
    scope_value: str
    kind: Kind
    amount: int
    starts_at: datetime
    ends_at: datetime

    def __post_init__(self) -> None:
        problems = _kind_problems(self.kind, self.amount)
        if self.scope not in get_args(Scope):
            problems["scope"] = "must be product, category, brand or seller"
        if not self.scope_value:
            problems["scope_value"] = "must not be empty"
        problems |= _aware(starts_at=self.starts_at, ends_at=self.ends_at)
        if "starts_at" not in problems and "ends_at" not in problems \
                and self.ends_at <= self.starts_at:
            problems["ends_at"] = "must be after starts_at"
        _check(problems)

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def price(self, cents: int) -> int:
        return _discounted(self.kind, self.amount, cents)


def best_deal(deals: Iterable[Deal], item: Item, now: datetime) -> tuple[Deal | None, int]:
    """The active deal in scope that gives the lowest price, and that price (ties: lowest
    deal id). A deal that saves nothing is not applied: (None, list price)."""
    best: Deal | None = None
    price = item.list_price_cents
    for d in sorted(deals, key=lambda d: d.deal_id):
        if d.active(now) and _applies(d.scope, d.scope_value, item):
            p = d.price(item.list_price_cents)
            if p < price:
                best, price = d, p
    return best, price


# -- dynamic pricing ------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DynamicRule:
    """Moves a variant's price within [floor, ceiling]. Scarce (stock <= low_stock) and selling
    fast (units sold in the last `window_s` >= hot_velocity): one step up by step_up_bp.
    Plentiful (stock >= high_stock) and selling slowly (<= cold_velocity): one step down by
    step_down_bp. Anything else: unchanged. A step is at least one cent."""

    variant_id: int
    seller_id: int
    floor_cents: int
    ceiling_cents: int
    low_stock: int
    high_stock: int
    hot_velocity: int
    cold_velocity: int
    step_up_bp: int
    step_down_bp: int
    window_s: int = 86_400

    def __post_init__(self) -> None:
        problems: dict[str, str] = {}
        if self.floor_cents < 0:
            problems["floor_cents"] = "must not be negative"
        if self.ceiling_cents < self.floor_cents:
            problems["ceiling_cents"] = "must not be below floor_cents"
        if not 0 <= self.low_stock < self.high_stock:
            problems["high_stock"] = "must be above low_stock, which must not be negative"
        if not 0 <= self.cold_velocity < self.hot_velocity:
            problems["hot_velocity"] = "must be above cold_velocity, which must not be negative"
        for name in ("step_up_bp", "step_down_bp"):
            if not 0 <= getattr(self, name) <= FULL_BP // 2:
                problems[name] = "must be 0 to 5000 basis points"
        if self.window_s < 1:
            problems["window_s"] = "must be at least 1"
        _check(problems)

    def clamp(self, cents: int) -> int:
        return min(max(cents, self.floor_cents), self.ceiling_cents)


def _step(cents: int, bp: int) -> int:
    return max(1, _pct(cents, bp)) if bp > 0 else 0


def dynamic_price(rule: DynamicRule, base_cents: int, stock: int, sales_velocity: int) -> int:
    """The next price from `base_cents` (one step at most), always within [floor, ceiling]."""
    if base_cents < 0:
        raise ValidationFailed({"base_cents": "must not be negative"})
    moved = base_cents
    if stock <= rule.low_stock and sales_velocity >= rule.hot_velocity:
        moved = base_cents + _step(base_cents, rule.step_up_bp)
    elif stock >= rule.high_stock and sales_velocity <= rule.cold_velocity:
        moved = base_cents - _step(base_cents, rule.step_down_bp)
    return rule.clamp(moved)


@dataclasses.dataclass(frozen=True)
class UnitPrice:
    list_cents: int
    deal: Deal | None
    deal_cents: int  # after the deal
    rule: DynamicRule | None
    dynamic_cents: int  # after the rule's floor and ceiling: what one unit costs


def unit_price(item: Item, deals: Iterable[Deal], rule: DynamicRule | None,
               now: datetime) -> UnitPrice:
    """list -> deal -> dynamic for one unit (the price PDP and search show)."""
    if rule is not None and (rule.variant_id, rule.seller_id) != (item.variant_id,
                                                                 item.seller_id):
        rule = None
    deal, after_deal = best_deal(deals, item, now)
    final = rule.clamp(after_deal) if rule is not None else after_deal
    return UnitPrice(item.list_price_cents, deal, after_deal, rule, final)


def compared_price(own_offer: bool, compare_cents: int | None, list_cents: int,
                   unit_cents: int, on_deal: bool) -> int | None:
    """The price a shown price is compared with ("was"): the listing seller's compare-at price
    when it is above, else the price before a deal, else none."""
    if own_offer and compare_cents is not None and compare_cents > unit_cents:
        return compare_cents
    if on_deal and list_cents > unit_cents:
        return list_cents
    return None


def listing_price(variants: Iterable[tuple[Item, int | None, Sequence[Offer], DynamicRule | None]],
                  deals: Sequence[Deal], now: datetime) -> tuple[int, int | None] | None:
    """What a listing (search result) shows for a product: the lowest buy-box unit price over
    its variants (item as its listing seller sells it, compare-at cents, offers, rule), with
    its `compared_price`. A variant out of stock everywhere counts at its listing seller's
    price (an out-of-stock product still shows one). None for no variants."""
    best: tuple[int, int | None] | None = None
    for item, compare, offers, rule in variants:
        winner = buy_box(offers).winner
        sold = item.sold_by(winner) if winner is not None else item
        u = unit_price(sold, deals, rule, now)
        if best is None or u.dynamic_cents < best[0]:
            best = (u.dynamic_cents, compared_price(sold.seller_id == item.seller_id, compare,
                                                    u.list_cents, u.dynamic_cents,
                                                    u.deal is not None))
    return best


# -- coupons --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Coupon:
    """A code for a discount on the lines in its scope (`cart`: every line). Limits of None
    are unlimited. `min_spend_cents` is checked against the lines it applies to."""

    code: str
    scope: CouponScope
    scope_value: str | None
    kind: Kind
    amount: int
    min_spend_cents: int
    per_customer_limit: int | None
    global_limit: int | None
    expires_at: datetime

    def __post_init__(self) -> None:
        problems = _kind_problems(self.kind, self.amount)
        if self.scope not in get_args(CouponScope):
            problems["scope"] = "must be cart, product, category, brand or seller"
        elif (self.scope == "cart") != (self.scope_value is None):
            problems["scope_value"] = "required for every scope but cart, and only then"
        if self.min_spend_cents < 0:
            problems["min_spend_cents"] = "must not be negative"
        for name in ("per_customer_limit", "global_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems[name] = "must be at least 1, or none"
        _check(problems | _aware(expires_at=self.expires_at))


@dataclasses.dataclass(frozen=True)
class CouponUsage:
    times_used: int = 0  # by everyone
    customer_times_used: int = 0  # by the customer asking


class CouponRejected(ValidationFailed):
    """`reason`: expired | limit_reached | customer_limit_reached | not_applicable | min_spend."""

    code = "coupon_rejected"

    def __init__(self, coupon_code: str, reason: str, detail: str) -> None:
        super().__init__({"coupon": detail}, f"coupon {coupon_code} cannot be used: {detail}")
        self.reason = reason
        self.data = {"reason": reason}


def normalize_code(code: str) -> str:
    return code.strip().upper()


def check_coupon_usable(coupon: Coupon, usage: CouponUsage, now: datetime) -> None:
    """Expiry and usage limits (what redemption checks again under a lock)."""
    if now >= coupon.expires_at:
        raise CouponRejected(coupon.code, "expired", "expired")
    if coupon.global_limit is not None and usage.times_used >= coupon.global_limit:
        raise CouponRejected(coupon.code, "limit_reached", "usage limit reached")
    if coupon.per_customer_limit is not None \
            and usage.customer_times_used >= coupon.per_customer_limit:
        raise CouponRejected(coupon.code, "customer_limit_reached",
                             "already used the most times allowed per customer")


def validate_coupon(coupon: Coupon, lines: Sequence[tuple[Item, int]], usage: CouponUsage,
                    now: datetime) -> list[int]:
    """Indices of the (item, line subtotal) pairs the coupon applies to; CouponRejected
    (field "coupon") when it cannot be used, checked in this order: expired, limits, not
    applicable to any item, below minimum spend."""
    check_coupon_usable(coupon, usage, now)
    eligible = [i for i, (item, _) in enumerate(lines)
                if _applies(coupon.scope, coupon.scope_value, item)]
    if not eligible:
        raise CouponRejected(coupon.code, "not_applicable", "not applicable to any item")
    spend = sum(lines[i][1] for i in eligible)
    if spend < coupon.min_spend_cents:
        raise CouponRejected(coupon.code, "min_spend",
                             f"below the minimum spend of {coupon.min_spend_cents} cents")
    return eligible


def coupon_discount(coupon: Coupon, eligible_cents: int) -> int:
    """The order's discount: never more than what the coupon applies to."""
    if coupon.kind == "percent":
        return _pct(eligible_cents, coupon.amount)
    return min(coupon.amount, eligible_cents)


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` by largest remainder (ties: earlier first):
    the shares sum to `total` exactly, and none exceeds its weight when total <= sum."""
    whole = sum(weights)
    if not 0 <= total <= whole or any(w < 0 for w in weights):
        raise ValidationFailed({"total": f"must be 0 to {whole}; weights must not be negative"})
    if whole == 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


# -- quotes ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Line:
    item: Item
    quantity: int


@dataclasses.dataclass(frozen=True)
class QuotedLine:
    item: Item
    quantity: int
    unit: UnitPrice
    subtotal_cents: int  # unit.dynamic_cents * quantity
    coupon_cents: int  # this line's share of the coupon's discount
    total_cents: int  # subtotal_cents - coupon_cents

    def to_json(self, coupon_code: str | None) -> dict[str, Any]:
        u = self.unit
        rule = None if u.rule is None else {"floor_cents": u.rule.floor_cents,
                                             "ceiling_cents": u.rule.ceiling_cents}
        return {
            "variant_id": str(self.item.variant_id), "seller_id": str(self.item.seller_id),
            "quantity": self.quantity, "unit_cents": u.dynamic_cents,
            "breakdown": [
                {"step": "list", "unit_cents": u.list_cents},
                {"step": "deal", "unit_cents": u.deal_cents,
                 "deal_id": None if u.deal is None else str(u.deal.deal_id)},
                {"step": "dynamic", "unit_cents": u.dynamic_cents, "rule": rule},
                {"step": "coupon", "discount_cents": self.coupon_cents,
                 "code": coupon_code if self.coupon_cents else None},
            ],
            "subtotal_cents": self.subtotal_cents, "coupon_cents": self.coupon_cents,
            "total_cents": self.total_cents,
        }


@dataclasses.dataclass(frozen=True)
class Quote:
    lines: tuple[QuotedLine, ...]
    coupon_code: str | None
    subtotal_cents: int  # sum of line subtotals (after deals and rules)
    discount_cents: int  # the coupon's discount
    total_cents: int  # what the order pays
    priced_at: datetime

    def to_payload(self) -> dict[str, Any]:
        """JSON-ready (ids as strings, integer cents): what a quote token signs."""
        return {"currency": CURRENCY, "coupon": self.coupon_code,
                "lines": [line.to_json(self.coupon_code) for line in self.lines],
                "subtotal_cents": self.subtotal_cents, "discount_cents": self.discount_cents,
                "total_cents": self.total_cents, "priced_at": self.priced_at.isoformat()}


def quote(lines: Sequence[Line], deals: Iterable[Deal], rules: Iterable[DynamicRule],
          coupon: Coupon | None, usage: CouponUsage | None, now: datetime) -> Quote:
    """The exact price of an order: list -> deal -> dynamic per unit, then the coupon split
    across the lines it applies to. ValidationFailed for bad lines, CouponRejected for a coupon
    that cannot be used."""
    problems = _aware(now=now)
    if not 1 <= len(lines) <= MAX_LINES:
        problems["items"] = f"1 to {MAX_LINES} items"
    for i, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            problems[f"items.{i}.quantity"] = f"must be 1 to {MAX_LINE_QUANTITY}"
        if line.item.list_price_cents < 0:
            problems[f"items.{i}.price"] = "must not be negative"
    _check(problems)
    deals = tuple(deals)
    by_key = {(r.variant_id, r.seller_id): r for r in rules}
    units = [unit_price(ln.item, deals, by_key.get((ln.item.variant_id, ln.item.seller_id)), now)
             for ln in lines]
    subtotals = [u.dynamic_cents * ln.quantity for u, ln in zip(units, lines, strict=True)]
    shares = [0] * len(lines)
    if coupon is not None:
        eligible = validate_coupon(coupon, [(ln.item, s) for ln, s in zip(lines, subtotals,
                                                                          strict=True)],
                                   usage or CouponUsage(), now)
        weights = [subtotals[i] for i in eligible]
        split = allocate(coupon_discount(coupon, sum(weights)), weights)
        for i, share in zip(eligible, split, strict=True):
            shares[i] = share
    quoted = tuple(QuotedLine(ln.item, ln.quantity, u, s, c, s - c)
                   for ln, u, s, c in zip(lines, units, subtotals, shares, strict=True))
    subtotal, discount = sum(subtotals), sum(shares)
    return Quote(quoted, None if coupon is None else coupon.code, subtotal, discount,
                 subtotal - discount, now)


# -- quote tokens ---------------------------------------------------------------------------

class QuoteTokenRejected(ValidationFailed):
    """code: quote_token_invalid (malformed or tampered) or quote_token_expired."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__({"quote_token": detail}, f"quote token {detail}")
        self.code = code


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _mac(secret: bytes, head: str) -> str:
    if len(secret) < 16:
        raise ConfigError("the quote signing secret must be at least 16 bytes")
    return _b64(hmac.new(secret, head.encode("ascii"), hashlib.sha256).digest())


def sign_quote(quote_payload: Mapping[str, Any], secret: bytes, now: datetime,
               ttl_s: int = 300) -> str:
    """`base64url(canonical JSON {exp, iat, quote}).base64url(HMAC-SHA256 of the first part)`,
    valid for `ttl_s` seconds from `now`."""
    _check(_aware(now=now) | ({} if ttl_s > 0 else {"ttl_s": "must be positive"}))
    iat = int(now.timestamp())
    head = _b64(canonical_json({"exp": iat + ttl_s, "iat": iat, "quote": dict(quote_payload)}))
    return f"{head}.{_mac(secret, head)}"


def verify_quote(token: str, secret: bytes, now: datetime) -> dict[str, Any]:
    """The signed payload; QuoteTokenRejected if the token is malformed, was changed, or has
    expired (at `exp` exactly it has)."""
    _check(_aware(now=now))
    head, dot, sig = token.partition(".")
    if not dot or len(token) > MAX_TOKEN_CHARS or not head.isascii():
        raise QuoteTokenRejected("quote_token_invalid", "is malformed")
    if not hmac.compare_digest(_mac(secret, head).encode("ascii"), sig.encode("utf-8")):
        raise QuoteTokenRejected("quote_token_invalid", "signature does not match")
    try:
        body = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        exp, payload = int(body["exp"]), body["quote"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise QuoteTokenRejected("quote_token_invalid", "is malformed") from exc
    if now.timestamp() >= exp:
        raise QuoteTokenRejected("quote_token_expired", "has expired")
    if not isinstance(payload, dict):
        raise QuoteTokenRejected("quote_token_invalid", "is malformed")
    return payload
