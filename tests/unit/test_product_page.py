"""The product page's pure parts: the cached price snapshot (unit prices, deals, how long it
stays true) and the answer assembled from metadata, prices and stock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.inventory_api import buyable
from domain.pricing import Deal, DynamicRule, Item, Offer
from domain.product_page import (
    ProductNotFound,
    ProductUnavailable,
    metadata,
    page,
    price_snapshot,
    stock_ids,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
OWNER, RIVAL = 1, 2


def row(**over: Any) -> dict[str, Any]:
    base = {"product_id": 10, "seller_id": OWNER, "external_id": "e", "title": "Speaker",
            "description": "d", "category_id": 3, "brand": "Acme", "status": "ACTIVE",
            "version": 2, "created_at": NOW.timestamp() - 10 * 86400, "seller_name": "Owner",
            "seller_rating": 4.5, "seller_status": "ACTIVE", "rating_avg": 4.7,
            "review_count": 25, "dist_1": 0, "dist_2": 0, "dist_3": 1, "dist_4": 4, "dist_5": 20,
            "variants": [{"variant_id": "100", "sku": "A", "attributes": {"color": "Black"}},
                         {"variant_id": "101", "sku": "B", "attributes": {"price": "odd"}}],
            "images": [[None, "all.jpg"], ["101", "b.jpg"]], "sold": 20}
    return base | over


def deal(deal_id: int, amount: int, ends_in: timedelta = timedelta(hours=1),
         kind: str = "percent") -> Deal:
    return Deal(deal_id, "product", "10", kind, amount, NOW - timedelta(hours=1),  # type: ignore[arg-type]
                NOW + ends_in)


def prices(deals: list[Deal], rule: DynamicRule | None = None, next_start: datetime | None = None,
           rival_available: int = 5) -> tuple[dict[str, Any], int]:
    a = Item(100, 10, OWNER, 10_000)
    b = Item(101, 10, OWNER, 5_000)
    variants = [
        (a, 12_000, (Offer(OWNER, 100, 10_000, 9, 4.5), Offer(RIVAL, 100, 9_700, rival_available,
                                                              4.9)), rule),
        (b, None, (Offer(OWNER, 101, 5_000, 3, 4.5),), None),
    ]
    return price_snapshot(variants, deals, {OWNER: "Owner", RIVAL: "Rival"}, {7: "Spring"},
                          next_start, NOW, 60)


def stock(a: int, b: int = 3) -> dict[str, dict[str, Any]]:
    def snap(n: int) -> dict[str, Any]:
        return {"status": "OUT_OF_STOCK" if n == 0 else "IN_STOCK",
                "quantity_hint": str(n), "available": n}
    return {"100": snap(a), "101": snap(b)}


def test_snapshot_lives_until_the_first_deal_ends_or_the_next_starts() -> None:
    snap, ttl = prices([])
    assert ttl == 60_000 and snap["deals"] == {}
    snap, ttl = prices([deal(7, 1000, ends_in=timedelta(seconds=20))])
    assert ttl == 20_000 and list(snap["deals"]) == ["7"]
    assert snap["deals"]["7"]["name"] == "Spring"
    _, ttl = prices([], next_start=NOW + timedelta(seconds=5))
    assert ttl == 5_000
    offers = snap["variants"]["100"]["offers"]
    assert [(o["seller_id"], o["unit_cents"], o["deal_id"]) for o in offers] == [
        ("1", 9_000, "7"), ("2", 8_730, "7")]


def test_buy_box_price_and_was() -> None:
    meta = metadata(row(), [], True, NOW.timestamp())
    snap, _ = prices([])
    out = page(meta, snap, stock(9), ["Audio", "Speakers"])
    a, b = out["variants"]
    # the rival is cheaper and has stock: it wins, and there is no deal, so no "was"
    assert a["buy_box"]["winner"]["seller"] == {"id": "2", "name": "Rival", "rating": 4.9}
    assert a["price"] == {"amount": 97.0, "currency": "USD", "was": None}
    assert [o["seller"]["id"] for o in a["buy_box"]["others"]] == ["1"]
    assert a["buy_box"]["others"][0]["price"]["was"] == 120.0  # the owner's compare-at
    assert a["color"] == "Black" and b["attributes"] == {"price": "odd"}
    assert b["price"] == {"amount": 50.0, "currency": "USD", "was": None}  # never replaced
    assert b["images"] == ["b.jpg", "all.jpg"] and a["images"] == ["all.jpg"]
    assert out["price"]["amount"] == 50.0 and out["buy_box"]["variant_id"] == "101"
    assert out["category_path"] == ["Audio", "Speakers"]
    assert out["badges"] == ["Best Seller", "Top Rated"]
    assert out["reviews_summary"]["distribution"] == {"5": 20, "4": 4, "3": 1, "2": 0, "1": 0}


def test_rival_without_stock_and_owner_out_of_stock() -> None:
    meta = metadata(row(), [], True, NOW.timestamp())
    snap, _ = prices([deal(7, 1000)], rival_available=0)
    out = page(meta, snap, stock(0), [])
    a = out["variants"][0]
    assert a["buy_box"]["winner"] is None
    assert a["inventory"] == {"status": "OUT_OF_STOCK", "quantity_hint": "0"}
    # nobody can sell it: the owner's price is shown, 10 % off, was the compare-at price
    assert a["price"] == {"amount": 90.0, "currency": "USD", "was": 120.0}
    assert [d["deal_id"] for d in out["deals"]] == ["7"]
    # a rival's deal price shows the price before the deal
    rival = next(o for o in a["buy_box"]["others"] if o["seller"]["id"] == "2")
    assert rival["price"] == {"amount": 87.3, "currency": "USD", "was": 97.0}
    assert rival["in_stock"] is False


def test_dynamic_floor_cuts_a_deal_back() -> None:
    rule = DynamicRule(100, OWNER, 9_500, 20_000, 1, 100, 10, 1, 100, 100)
    snap, _ = prices([deal(7, 1000)], rule=rule, rival_available=0)
    a = page(metadata(row(), [], True, NOW.timestamp()), snap, stock(9), [])["variants"][0]
    assert a["price"] == {"amount": 95.0, "currency": "USD", "was": 120.0}


def test_unknown_stock_is_said_so_and_related_needs_stock() -> None:
    related = [{"product_id": "20", "variant_ids": ["200"], "in_stock": True},
               {"product_id": "21", "variant_ids": ["210"], "in_stock": True},
               {"product_id": "22", "variant_ids": ["220"], "in_stock": False}]
    meta = metadata(row(), related, True, NOW.timestamp())
    snap, _ = prices([])
    s = {"101": {"status": "LOW_STOCK", "quantity_hint": "3", "available": 3},
         "210": {"status": "OUT_OF_STOCK", "quantity_hint": "0", "available": 0}}
    out = page(meta, snap, s, [])
    assert out["variants"][0]["inventory"] == {"status": "UNKNOWN", "quantity_hint": None}
    # 20: no snapshot, the index says in stock; 21: the snapshot says sold out; 22: index no
    assert out["related_products"] == ["20"]
    assert stock_ids(meta) == ([100, 101], [200, 210, 220])


@pytest.mark.parametrize(("over", "error"), [
    ({"status": "DELETED"}, ProductNotFound), ({"status": "DRAFT"}, ProductNotFound),
    ({"status": "INACTIVE"}, ProductUnavailable), ({"seller_status": "SUSPENDED"},
                                                   ProductUnavailable),
    ({"variants": []}, ProductUnavailable)])
def test_products_shoppers_may_not_see(over: dict[str, Any], error: type[Exception]) -> None:
    meta = metadata(row(**over), [], True, NOW.timestamp())
    assert set(meta) == {"gone"}
    with pytest.raises(error):
        page(meta, {}, {}, [])
    with pytest.raises(ProductNotFound):
        page(metadata(None, [], True, 0.0), {}, {}, [])


def test_no_sellable_variant_left_is_unavailable() -> None:
    meta = metadata(row(), [], True, NOW.timestamp())
    with pytest.raises(ProductUnavailable):
        page(meta, {"variants": {}, "deals": {}}, {}, [])


def test_buy_box_is_the_one_a_quote_charges_for() -> None:
    """A deal of the owner's only: the owner's offer costs the shopper less (80.00 against
    the rival's 97.00), so it wins the buy box, as a quote buys it (the lowest unit price
    after each seller's deal and rule), and the page shows that price."""
    seller_deal = Deal(8, "seller", str(OWNER), "percent", 2000, NOW - timedelta(hours=1),
                       NOW + timedelta(hours=1))
    snap, _ = prices([seller_deal])
    a = page(metadata(row(), [], True, NOW.timestamp()), snap, stock(9), [])["variants"][0]
    assert a["buy_box"]["winner"]["seller"]["id"] == str(OWNER)
    assert a["price"] == {"amount": 80.0, "currency": "USD", "was": 120.0}
    assert [(o["seller"]["id"], o["price"]) for o in a["buy_box"]["others"]] == [
        (str(RIVAL), {"amount": 97.0, "currency": "USD", "was": None})]


def test_product_price_is_the_cheapest_variants_as_in_search() -> None:
    meta = metadata(row(), [], True, NOW.timestamp())
    snap, _ = prices([])
    out = page(meta, snap, stock(9, b=0), [])
    # variant 101 (50.00) is sold out: still the product's price, as search shows it; the
    # buy box shown is the one of the variant that can be bought
    assert out["price"]["amount"] == 50.0 and out["buy_box"]["variant_id"] == "100"


def test_inventory_counts_the_units_on_offer_only() -> None:
    """Units left in the warehouse of a seller whose offer is withdrawn (s-9 here) are not
    shown: a shopper could not buy them."""
    meta = metadata(row(), [], True, NOW.timestamp())
    snap, _ = prices([])
    snap["variants"]["100"]["offers"][1]["warehouse"] = "s-2"  # the rival ships its own

    def shown(available: int, offered: dict[str, int], status: str = "IN_STOCK"
              ) -> dict[str, Any]:
        s = {**stock(9), "100": {"status": status, "quantity_hint": str(available),
                                 "available": available, "offered": offered}}
        return dict(page(meta, snap, s, [], low_stock=5)["variants"][0]["inventory"])

    # every unit on offer: the owner's snapshot as it is
    assert shown(9, {"s-2": 5}) == {"status": "IN_STOCK", "quantity_hint": "9"}
    # 10 more in a withdrawn seller's warehouse: the owner's 4 and the rival's 5 only
    assert shown(19, {"s-2": 5, "s-9": 10}) == {"status": "IN_STOCK", "quantity_hint": "9"}
    assert shown(33, {"s-2": 1, "s-9": 30}) == {"status": "LOW_STOCK", "quantity_hint": "3"}
    assert shown(30, {"s-9": 30}) == {"status": "OUT_OF_STOCK", "quantity_hint": "0"}


def test_each_offer_shows_what_an_add_can_take_from_its_seller() -> None:
    """The variant counts every offer's units; an add to a cart takes from one seller's (the
    buy box's winner's), so each offer says how many it has: the page never promises 5 where
    an add can hold 2."""
    meta = metadata(row(), [], True, NOW.timestamp())
    snap, _ = prices([])
    snap["variants"]["100"]["offers"][1]["warehouse"] = "s-2"
    s = {**stock(9), "100": {"status": "LOW_STOCK", "quantity_hint": "5", "available": 5,
                             "offered": {"s-2": 2}}}
    v = page(meta, snap, s, [], low_stock=5)["variants"][0]
    assert v["inventory"] == {"status": "LOW_STOCK", "quantity_hint": "5"}
    winner, [owner] = v["buy_box"]["winner"], v["buy_box"]["others"]
    assert winner["seller"]["id"] == str(RIVAL)  # 97.00 against the owner's 100.00
    assert winner["inventory"] == {"status": "LOW_STOCK", "quantity_hint": "2"}
    assert owner["inventory"] == {"status": "LOW_STOCK", "quantity_hint": "3"}
    assert (winner["in_stock"], owner["in_stock"]) == (True, True)
    unknown = page(meta, snap, {"101": stock(9)["101"]}, [])["variants"][0]["buy_box"]
    assert unknown["winner"]["inventory"]["quantity_hint"] == "5"  # as priced
    assert unknown["others"][0]["inventory"] == {"status": "UNKNOWN", "quantity_hint": None}


def test_buyable_units_leave_out_warehouses_of_withdrawn_offers() -> None:
    """What search results count (`domain.inventory_api.buyable`): the listing seller's units
    and those of live offers' warehouses, as the product page above."""
    snap = {"status": "IN_STOCK", "quantity_hint": "19", "available": 19,
            "offered": {"s-2": 5, "s-9": 10}}
    assert buyable(snap, ("s-2", "s-9")) == 19
    assert buyable(snap, ("s-2",)) == 9  # s-9 withdrew: the owner's 4 and s-2's 5
    assert buyable(snap, ()) == 4
    assert buyable({"status": "IN_STOCK", "quantity_hint": "7", "available": 7}, ()) == 7
    assert buyable({"status": "OUT_OF_STOCK", "quantity_hint": "0", "available": 0,
                    "offered": {"s-9": 0}}, ()) == 0
