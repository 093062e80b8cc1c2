"""The pricing rules, alone: examples and hypothesis properties."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ValidationFailed
from domain.pricing import (
    Coupon,
    CouponRejected,
    CouponUsage,
    Deal,
    DynamicRule,
    Item,
    Line,
    Offer,
    QuoteTokenRejected,
    allocate,
    best_deal,
    buy_box,
    check_coupon_usable,
    dynamic_price,
    listing_price,
    priced_buy_box,
    quote,
    sign_quote,
    unit_price,
    validate_coupon,
    verify_quote,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECRET = b"s" * 32
SONY = Item(variant_id=11, product_id=1, seller_id=7, list_price_cents=10_000,
            category_ids=frozenset({3, 30}), brand="Sony")
BOSE = Item(variant_id=22, product_id=2, seller_id=8, list_price_cents=4_999,
            category_ids=frozenset({3, 31}), brand="Bose")


def deal(deal_id: int, scope: str, value: str, kind: str, amount: int,
         starts: datetime = NOW - DAY, ends: datetime = NOW + DAY) -> Deal:
    return Deal(deal_id, scope, value, kind, amount, starts, ends)  # type: ignore[arg-type]


def rule(floor: int = 9_000, ceiling: int = 12_000, **kw: int) -> DynamicRule:
    args = {"variant_id": 11, "seller_id": 7, "floor_cents": floor, "ceiling_cents": ceiling,
            "low_stock": 5, "high_stock": 100, "hot_velocity": 20, "cold_velocity": 2,
            "step_up_bp": 500, "step_down_bp": 500} | kw
    return DynamicRule(**args)


def coupon(**kw: object) -> Coupon:
    args: dict[str, object] = {
        "code": "SAVE10", "scope": "cart", "scope_value": None, "kind": "percent",
        "amount": 1_000, "min_spend_cents": 0, "per_customer_limit": None, "global_limit": None,
        "expires_at": NOW + DAY} | kw
    return Coupon(**args)  # type: ignore[arg-type]


# -- buy box --------------------------------------------------------------------------------

def test_buy_box_lowest_price_then_rating_then_seller_id() -> None:
    offers = [Offer(5, 11, 1_000, 3, 4.0), Offer(4, 11, 1_000, 3, 4.8),
              Offer(3, 11, 1_000, 3, 4.8), Offer(2, 11, 900, 0, 5.0), Offer(1, 11, 1_200, 9, 5.0)]
    box = buy_box(offers)
    assert box.winner == offers[2]  # 900 has no stock; 4.8 beats 4.0; seller 3 before 4
    assert [o.seller_id for o in box.others] == [4, 5, 1, 2]  # out of stock last


def test_buy_box_unrated_sellers_rank_below_rated_and_no_stock_means_no_winner() -> None:
    assert buy_box([Offer(1, 11, 500, 1, None), Offer(2, 11, 500, 1, 0.0)]).winner == \
        Offer(2, 11, 500, 1, 0.0)
    box = buy_box([Offer(1, 11, 500, 0, 5.0)])
    assert box.winner is None and len(box.others) == 1
    assert buy_box([]).winner is None


def test_buying_from_another_seller_uses_that_sellers_price() -> None:
    item = SONY.sold_by(Offer(99, 11, 8_500, 4, 4.1))
    assert (item.seller_id, item.list_price_cents, item.brand) == (99, 8_500, "Sony")
    with pytest.raises(ValidationFailed):
        SONY.sold_by(Offer(99, 12, 8_500, 4))


# -- deals ----------------------------------------------------------------------------------

def test_best_deal_picks_the_lowest_price_and_deals_do_not_stack() -> None:
    deals = [deal(1, "brand", "sony", "percent", 1_000),  # 9000
             deal(2, "category", "3", "fixed", 1_500),  # 8500: the parent category matches
             deal(3, "seller", "7", "percent", 500),  # 9500
             deal(4, "product", "2", "percent", 9_000)]  # another product
    d, price = best_deal(deals, SONY, NOW)
    assert d is not None and d.deal_id == 2 and price == 8_500


def test_deals_are_time_boxed_and_scoped() -> None:
    later = deal(1, "product", "1", "percent", 5_000, starts=NOW + DAY, ends=NOW + 2 * DAY)
    over = deal(2, "product", "1", "percent", 5_000, starts=NOW - DAY, ends=NOW)  # end excluded
    other_brand = deal(3, "brand", "Bose", "percent", 5_000)
    assert best_deal([later, over, other_brand], SONY, NOW) == (None, 10_000)
    assert best_deal([later], SONY, NOW + DAY)[1] == 5_000


def test_a_deal_never_gives_an_item_away_and_ties_go_to_the_lowest_id() -> None:
    full = SONY.list_price_cents
    # a fixed amount of the whole price or more does not apply (a slip): the list price
    assert best_deal([deal(9, "product", "1", "fixed", full)], SONY, NOW) == (None, full)
    assert best_deal([deal(9, "product", "1", "fixed", full - 1)], SONY, NOW)[1] == 1
    d, price = best_deal([deal(9, "product", "1", "percent", 2_000),
                          deal(8, "product", "1", "percent", 2_000),
                          deal(7, "product", "1", "fixed", 50_000_000)], SONY, NOW)
    assert d is not None and d.deal_id == 8 and price == full - (full * 2_000 + 5_000) // 10_000
    # all of it off (new ones are refused when written; one stored before never applies)
    assert best_deal([deal(1, "product", "1", "percent", 10_000)], SONY, NOW) == (None, full)


def test_percent_rounds_half_up_to_the_cent() -> None:
    item = dataclasses.replace(SONY, list_price_cents=1_005)
    assert best_deal([deal(1, "product", "1", "percent", 5_000)], item, NOW)[1] == 502


def test_bad_deals_are_refused() -> None:
    with pytest.raises(ValidationFailed) as err:
        deal(1, "warehouse", "", "percent", 10_001, starts=NOW, ends=NOW)
    assert set(err.value.fields) == {"scope", "scope_value", "amount", "ends_at"}
    with pytest.raises(ValidationFailed):
        deal(1, "product", "1", "fixed", 0)
    with pytest.raises(ValidationFailed, match="invalid") as err:
        deal(1, "product", "1", "fixed", 5, starts=datetime(2025, 1, 1))
    assert err.value.fields == {"starts_at": "must be timezone-aware"}


# -- dynamic pricing ------------------------------------------------------------------------

def test_dynamic_price_moves_up_when_scarce_and_hot_down_when_plentiful_and_cold() -> None:
    r = rule()
    assert dynamic_price(r, 10_000, stock=5, sales_velocity=20) == 10_500
    assert dynamic_price(r, 10_000, stock=100, sales_velocity=2) == 9_500
    assert dynamic_price(r, 10_000, stock=5, sales_velocity=2) == 10_000  # scarce but cold
    assert dynamic_price(r, 10_000, stock=50, sales_velocity=50) == 10_000  # hot, not scarce


def test_dynamic_price_is_clamped_and_steps_at_least_a_cent() -> None:
    r = rule(floor=9_800, ceiling=10_200)
    assert dynamic_price(r, 10_000, stock=0, sales_velocity=99) == 10_200
    assert dynamic_price(r, 10_000, stock=999, sales_velocity=0) == 9_800
    assert dynamic_price(r, 20_000, stock=50, sales_velocity=10) == 10_200  # unchanged: clamped
    tiny = rule(floor=0, ceiling=100)
    assert dynamic_price(tiny, 3, stock=0, sales_velocity=99) == 4


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValidationFailed) as err:
        rule(floor=10, ceiling=5, low_stock=10, high_stock=10, step_up_bp=6_000)
    assert set(err.value.fields) == {"ceiling_cents", "high_stock", "step_up_bp"}


def test_floor_cuts_a_deal_back_and_the_ceiling_caps_the_list_price() -> None:
    deep = deal(1, "product", "1", "percent", 5_000)
    u = unit_price(SONY, [deep], rule(), NOW)
    assert (u.list_cents, u.deal_cents, u.dynamic_cents) == (10_000, 5_000, 9_000)
    pricey = dataclasses.replace(SONY, list_price_cents=15_000)
    assert unit_price(pricey, [], rule(), NOW).dynamic_cents == 12_000
    other_seller = dataclasses.replace(SONY, seller_id=99)  # the rule is seller 7's
    assert unit_price(other_seller, [deep], rule(), NOW).dynamic_cents == 5_000


# -- coupons --------------------------------------------------------------------------------

def test_coupon_reasons() -> None:
    lines = [(SONY, 10_000), (BOSE, 4_999)]
    cases = [
        (coupon(expires_at=NOW), CouponUsage(), "expired"),
        (coupon(global_limit=10), CouponUsage(10, 0), "limit_reached"),
        (coupon(per_customer_limit=1), CouponUsage(3, 1), "customer_limit_reached"),
        (coupon(scope="brand", scope_value="Apple"), CouponUsage(), "not_applicable"),
        (coupon(scope="brand", scope_value="bose", min_spend_cents=5_000), CouponUsage(),
         "min_spend"),
    ]
    for c, usage, reason in cases:
        with pytest.raises(CouponRejected) as err:
            validate_coupon(c, lines, usage, NOW)
        assert err.value.reason == reason and list(err.value.fields) == ["coupon"]
    assert validate_coupon(coupon(scope="seller", scope_value="8"), lines, CouponUsage(),
                           NOW) == [1]
    assert validate_coupon(coupon(global_limit=10, per_customer_limit=2), lines,
                           CouponUsage(9, 1), NOW) == [0, 1]


def test_bad_coupons_are_refused() -> None:
    with pytest.raises(ValidationFailed) as err:
        coupon(scope="brand", kind="free", min_spend_cents=-1, global_limit=0)
    assert set(err.value.fields) == {"scope_value", "kind", "min_spend_cents", "global_limit"}


def test_allocate_is_exact_and_breaks_ties_by_position() -> None:
    assert allocate(100, [300, 300, 300]) == [34, 33, 33]
    assert allocate(10, [0, 5, 5]) == [0, 5, 5]
    assert allocate(0, [0, 0]) == [0, 0]
    with pytest.raises(ValidationFailed):
        allocate(11, [5, 5])


# -- quotes ---------------------------------------------------------------------------------

def test_quote_breakdown_list_deal_dynamic_coupon() -> None:
    deals = [deal(1, "product", "1", "percent", 2_000)]  # SONY 10000 -> 8000 -> floor 9000
    c = coupon(code="TEN", kind="fixed", amount=1_000)
    q = quote([Line(SONY, 2), Line(BOSE, 1)], deals, [rule()], c, CouponUsage(), NOW)
    sony, bose = q.lines
    assert (sony.unit.deal_cents, sony.unit.dynamic_cents, sony.subtotal_cents) == \
        (8_000, 9_000, 18_000)
    assert (bose.unit.deal is None, bose.unit.rule is None, bose.subtotal_cents) == \
        (True, True, 4_999)
    assert q.subtotal_cents == 22_999 and q.discount_cents == 1_000
    assert (sony.coupon_cents, bose.coupon_cents) == (783, 217)  # 782.6 and 217.4
    assert q.total_cents == 21_999 == sony.total_cents + bose.total_cents
    payload = q.to_payload()
    assert [s["step"] for s in payload["lines"][0]["breakdown"]] == \
        ["list", "deal", "dynamic", "coupon"]
    assert payload["lines"][0]["breakdown"][1]["deal_id"] == "1"
    assert payload["lines"][0]["breakdown"][2]["rule"] == {"floor_cents": 9_000,
                                                           "ceiling_cents": 12_000}
    assert payload["lines"][0]["breakdown"][3] == {"step": "coupon", "discount_cents": 783,
                                                   "code": "TEN"}


def test_scoped_coupon_only_touches_its_lines_and_never_all_of_them() -> None:
    c = coupon(scope="brand", scope_value="Bose", kind="fixed", amount=100_000)
    q = quote([Line(SONY, 1), Line(BOSE, 2)], [], [], c, None, NOW)
    assert [ln.coupon_cents for ln in q.lines] == [0, 9_997]
    assert [ln.total_cents for ln in q.lines] == [10_000, 1]


@pytest.mark.parametrize(("kind", "amount", "price", "discount"), [
    ("percent", 9_999, 1_000, 999),  # 999.9 cents rounds up to all of it: a cent is left
    ("percent", 10_000, 1_000, 999),  # stored before writes refused it
    ("fixed", 100_000, 1_000, 999),
    ("fixed", 999, 1_000, 999),
    ("percent", 5_000, 1_000, 500),
    ("fixed", 5, 1, 0),  # a line of a cent: nothing to take
])
def test_a_coupon_never_gives_an_order_away(kind: str, amount: int, price: int,
                                            discount: int) -> None:
    item = dataclasses.replace(SONY, list_price_cents=price)
    q = quote([Line(item, 1)], [], [], coupon(kind=kind, amount=amount), None, NOW)
    assert q.discount_cents == discount
    assert q.total_cents == price - discount > 0


def test_quote_refuses_bad_lines_and_passes_coupon_errors_through() -> None:
    with pytest.raises(ValidationFailed) as err:
        quote([Line(SONY, 0), Line(BOSE, 10_001)], [], [], None, None, NOW)
    assert set(err.value.fields) == {"items.0.quantity", "items.1.quantity"}
    with pytest.raises(ValidationFailed, match="invalid"):
        quote([], [], [], None, None, NOW)
    with pytest.raises(CouponRejected):
        quote([Line(SONY, 1)], [], [], coupon(expires_at=NOW - DAY), None, NOW)


# -- quote tokens ---------------------------------------------------------------------------

def test_token_round_trip_tamper_and_expiry() -> None:
    payload = quote([Line(SONY, 1)], [], [], None, None, NOW).to_payload()
    token = sign_quote(payload, SECRET, NOW, ttl_s=300)
    assert verify_quote(token, SECRET, NOW + timedelta(seconds=299)) == payload
    with pytest.raises(QuoteTokenRejected) as err:
        verify_quote(token, SECRET, NOW + timedelta(seconds=300))
    assert err.value.code == "quote_token_expired" and list(err.value.fields) == ["quote_token"]
    with pytest.raises(QuoteTokenRejected) as err:
        verify_quote(token, b"t" * 32, NOW)
    assert err.value.code == "quote_token_invalid"
    for bad in ("", "abc", token + "x", "." + token.split(".")[1], "é." + token.split(".")[1]):
        with pytest.raises(QuoteTokenRejected):
            verify_quote(bad, SECRET, NOW)


def test_a_token_with_a_changed_price_is_refused() -> None:
    import base64
    import json

    token = sign_quote({"total_cents": 10_000}, SECRET, NOW)
    head, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    body["quote"]["total_cents"] = 1
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(QuoteTokenRejected, match="signature"):
        verify_quote(f"{forged}.{sig}", SECRET, NOW)


# -- properties -----------------------------------------------------------------------------

cents = st.integers(0, 10_000_000)
rules = st.builds(
    lambda floor, span, low, gap, cold, hgap, up, down: rule(
        floor=floor, ceiling=floor + span, low_stock=low, high_stock=low + 1 + gap,
        cold_velocity=cold, hot_velocity=cold + 1 + hgap, step_up_bp=up, step_down_bp=down),
    cents, st.integers(0, 1_000_000), st.integers(0, 50), st.integers(0, 200), st.integers(0, 20),
    st.integers(0, 50), st.integers(0, 5_000), st.integers(0, 5_000))
deal_lists = st.lists(st.builds(
    lambda i, scope, kind, pct, fixed, s, e: deal(
        i, scope[0], scope[1], kind, pct if kind == "percent" else fixed,
        starts=NOW + timedelta(hours=s), ends=NOW + timedelta(hours=s + e)),
    st.integers(1, 50),
    st.sampled_from([("product", "1"), ("brand", "SONY"), ("category", "30"), ("seller", "7"),
                     ("product", "2")]),
    st.sampled_from(["percent", "fixed"]), st.integers(1, 10_000), st.integers(1, 20_000_000),
    st.integers(-48, 1), st.integers(1, 96)), max_size=6)


@settings(max_examples=300)
@given(rules, cents, st.integers(0, 500), st.integers(0, 500))
def test_dynamic_price_stays_within_floor_and_ceiling(r: DynamicRule, base: int, stock: int,
                                                      velocity: int) -> None:
    p = dynamic_price(r, base, stock, velocity)
    assert 0 <= r.floor_cents <= p <= r.ceiling_cents
    if r.floor_cents <= base <= r.ceiling_cents:
        assert abs(p - base) <= max(1, base * 5_000 // 10_000 + 1)  # at most one step


@settings(max_examples=300)
@given(deal_lists, cents, st.one_of(st.none(), rules))
def test_unit_price_never_negative_never_below_floor_never_above_ceiling(
        deals: list[Deal], list_price: int, r: DynamicRule | None) -> None:
    item = dataclasses.replace(SONY, list_price_cents=list_price)
    u = unit_price(item, deals, r, NOW)
    assert 0 <= u.deal_cents <= u.list_cents
    assert u.deal_cents > 0 or list_price == 0  # a deal never gives an item away
    assert u.dynamic_cents >= 0
    if r is not None:
        assert r.floor_cents <= u.dynamic_cents <= r.ceiling_cents
    else:
        assert u.dynamic_cents == u.deal_cents
    live = [d for d in deals if d.active(NOW) and d.scope_value != "2"]
    assert u.deal_cents == min([d.price(list_price) for d in live], default=list_price)


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**7), min_size=1, max_size=30))
def test_allocation_sums_exactly_and_never_exceeds_a_line(total: int, weights: list[int]) -> None:
    total = total % (sum(weights) + 1)
    shares = allocate(total, weights)
    assert sum(shares) == total
    assert all(0 <= s <= w for s, w in zip(shares, weights, strict=True))
    exact = [total * w / max(sum(weights), 1) for w in weights]
    assert all(abs(s - x) < 1 for s, x in zip(shares, exact, strict=True))


items = st.builds(
    lambda v, p, seller, price, brand: Item(v, p, seller, price, frozenset({3}), brand),
    st.integers(1, 3), st.integers(1, 3), st.sampled_from([7, 8]), cents,
    st.sampled_from(["Sony", "Bose", None]))
coupons = st.builds(
    lambda scope, kind, amount, min_spend: coupon(
        scope=scope[0], scope_value=scope[1], kind=kind, min_spend_cents=min_spend,
        amount=min(amount, 10_000) if kind == "percent" else amount),
    st.sampled_from([("cart", None), ("brand", "sony"), ("seller", "8"), ("category", "3")]),
    st.sampled_from(["percent", "fixed"]), st.integers(1, 10**8), st.integers(0, 10**6))


@settings(max_examples=300)
@given(st.lists(st.tuples(items, st.integers(1, 20)), min_size=1, max_size=8),
       deal_lists, st.lists(rules, max_size=2), st.one_of(st.none(), coupons))
def test_quote_invariants(lines: list[tuple[Item, int]], deals: list[Deal],
                          rs: list[DynamicRule], c: Coupon | None) -> None:
    rs = [dataclasses.replace(r, variant_id=i + 1) for i, r in enumerate(rs)]
    try:
        q = quote([Line(i, n) for i, n in lines], deals, rs, c, CouponUsage(), NOW)
    except CouponRejected:
        return
    for ln in q.lines:
        assert ln.unit.dynamic_cents >= 0 and ln.coupon_cents >= 0 and ln.total_cents >= 0
        assert ln.subtotal_cents == ln.unit.dynamic_cents * ln.quantity
        assert ln.total_cents == ln.subtotal_cents - ln.coupon_cents
        r = next((r for r in rs if (r.variant_id, r.seller_id) ==
                  (ln.item.variant_id, ln.item.seller_id)), None)
        if r is not None:
            assert r.floor_cents <= ln.unit.dynamic_cents <= r.ceiling_cents
    assert q.subtotal_cents == sum(ln.subtotal_cents for ln in q.lines)
    assert q.discount_cents == sum(ln.coupon_cents for ln in q.lines)
    assert q.total_cents == q.subtotal_cents - q.discount_cents == \
        sum(ln.total_cents for ln in q.lines) >= 0
    if c is not None:
        eligible = sum(ln.subtotal_cents for ln in q.lines if _eligible(c, ln.item))
        off = c.amount if c.kind == "fixed" else (eligible * c.amount + 5_000) // 10_000
        assert q.discount_cents == max(0, min(off, eligible - 1))  # never all of them
        assert all(ln.coupon_cents == 0 for ln in q.lines if not _eligible(c, ln.item))


def _eligible(c: Coupon, item: Item) -> bool:
    try:
        validate_coupon(dataclasses.replace(c, min_spend_cents=0), [(item, 0)], CouponUsage(),
                        NOW)
    except CouponRejected:
        return False
    return True


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6), st.integers(1, 3_600),
       st.integers(0, 10**6))
def test_any_payload_round_trips_until_it_expires(payload: dict[str, object], ttl: int,
                                                  flip: int) -> None:
    token = sign_quote(payload, SECRET, NOW, ttl_s=ttl)
    assert verify_quote(token, SECRET, NOW + timedelta(seconds=ttl - 1)) == payload
    with pytest.raises(QuoteTokenRejected):
        verify_quote(token, SECRET, NOW + timedelta(seconds=ttl))
    i = flip % len(token)
    changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    with pytest.raises(QuoteTokenRejected):
        verify_quote(changed, SECRET, NOW)


def test_the_buy_box_compares_what_each_offer_charges_after_its_sellers_deal_and_rule() -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    item = Item(1, 10, 100, 5_000)  # the listing seller (100) lists at 50.00
    own, rival = Offer(100, 1, 5_000, 10), Offer(200, 1, 4_800, 3)
    # the listing seller's 10 % deal on its product: 45.00 beats the rival's 48.00
    deal = Deal(1, "product", "10", "percent", 1_000, now - timedelta(hours=1),
                now + timedelta(hours=1), seller_id=100)
    assert buy_box([own, rival]).winner == rival  # its own prices alone
    assert priced_buy_box(item, [own, rival], (deal,), None, now).winner == own
    assert listing_price([(item, None, (own, rival), None)], (deal,), now) == (4_500, 5_000)
    # the listing seller's rule cuts its deal back to a 47.50 floor: still below 48.00
    rule = DynamicRule(1, 100, 4_750, 9_000, 1, 100, 5, 0, 100, 100)
    assert priced_buy_box(item, [own, rival], (deal,), rule, now).winner == own
    # a floor of 49.00: the rival's 48.00 wins; its own deal (5 %) does not change that
    rule = dataclasses.replace(rule, floor_cents=4_900)
    rivals = Deal(2, "product", "10", "percent", 500, now - timedelta(hours=1),
                  now + timedelta(hours=1), seller_id=200)
    box = priced_buy_box(item, [own, rival], (deal, rivals), rule, now)
    assert box.winner == rival and box.others == (own,)
    assert listing_price([(item, None, (own, rival), rule)], (deal, rivals), now) == \
        (4_560, 4_800)


def test_listing_price_is_the_cheapest_buy_box_with_what_it_is_compared_with() -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    item = Item(1, 10, 100, 5_000, frozenset({7}), "Acme")
    other = Item(2, 10, 100, 4_000, frozenset({7}), "Acme")
    deal = Deal(1, "brand", "acme", "percent", 1_000, now - timedelta(hours=1),
                now + timedelta(hours=1))
    own1, own2 = Offer(100, 1, 5_000, 3), Offer(100, 2, 4_000, 0)  # variant 2: none left
    rival2 = Offer(200, 2, 3_900, 5)
    # variant 2 sells through the rival (3,900 - 10 % = 3,510), before the deal 3,900
    assert listing_price([(item, None, (own1,), None), (other, None, (own2, rival2), None)],
                         (deal,), now) == (3_510, 3_900)
    # the listing seller's compare-at price wins over the pre-deal price
    assert listing_price([(item, 6_000, (own1,), None)], (deal,), now) == (4_500, 6_000)
    assert listing_price([(item, 6_000, (own1,), None)], (), now) == (5_000, 6_000)
    assert listing_price([(item, None, (own1,), None)], (), now) == (5_000, None)
    # out of stock everywhere: still the listing seller's price
    assert listing_price([(other, None, (own2,), None)], (deal,), now) == (3_600, 4_000)
    assert listing_price([], (deal,), now) is None


def test_a_sellers_deal_discounts_only_that_sellers_sales() -> None:
    own = Item(11, 1, 5, 10_000)
    deal = Deal(1, "product", "1", "percent", 2_000, NOW - timedelta(hours=1),
                NOW + timedelta(hours=1), seller_id=9)
    assert best_deal([deal], own, NOW) == (None, 10_000)  # the listing seller's sale
    rival = own.sold_by(Offer(9, 11, 9_000, 3))
    assert best_deal([deal], rival, NOW) == (deal, 7_200)


def test_a_coupon_is_not_usable_before_it_starts() -> None:
    c = Coupon("LATER", "cart", None, "fixed", 100, 0, None, None, NOW + timedelta(days=2),
               starts_at=NOW + timedelta(days=1))
    with pytest.raises(CouponRejected) as e:
        check_coupon_usable(c, CouponUsage(), NOW)
    assert e.value.reason == "not_started"
    check_coupon_usable(c, CouponUsage(), NOW + timedelta(days=1, seconds=1))
    with pytest.raises(ValidationFailed) as bad:
        Coupon("BAD", "cart", None, "fixed", 100, 0, None, None, NOW, starts_at=NOW)
    assert "expires_at" in bad.value.fields
