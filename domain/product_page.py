"""The product detail page (pure): what is cached, and the answer assembled from it.

Three parts with three lifetimes:
- metadata (`metadata`): the product, its seller, reviews summary, active variants with their
  attributes and images, related-product candidates. Cached 10 min, dropped on catalog events.
- price snapshot (`price_snapshot`): per variant, every seller's offer with the unit price the
  pricing engine gives it now (list -> best deal -> dynamic floor/ceiling, `unit_price`), and
  the deals that set those prices. Cached 1 min, dropped on price events, and never kept past
  the moment a price changes by itself (a deal ending or starting).
- stock: the partition owners' snapshots, read on every request, never cached with the rest.

`page` puts them together: the buy box per variant (the pricing engine's `buy_box` over the
offers' prices, as a quote picks the offer it charges for; the listing seller's stock from
the snapshot), the variant's price (the winner's unit price, with `was`: the listing seller's
compare-at price, or the price before the deal), the product's price (its cheapest variant's,
as search shows it), badges, the deals shown, related products in stock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from domain.errors import NotFound
from domain.inventory import stock_status
from domain.inventory_api import buyable
from domain.pricing import (
    CURRENCY,
    Deal,
    DynamicRule,
    Item,
    Offer,
    buy_box,
    compared_price,
    unit_price,
)
from domain.search_documents import DAY_S, badges

RELATED_LIMIT = 8
LOW_STOCK = 5  # LOW_STOCK at or below this many units (AISLE_LOW_STOCK_THRESHOLD)
# variant fields the seed shows beside attributes ("color": "Black"): an attribute with one of
# these names stays only under `attributes`
_VARIANT_FIELDS = frozenset({"variant_id", "sku", "attributes", "price", "inventory", "images",
                             "buy_box"})


class ProductNotFound(NotFound):
    """Unknown, deleted, or never published (DRAFT)."""

    code = "product_not_found"


class ProductUnavailable(NotFound):
    """Was on sale, is not now (INACTIVE, seller suspended, no active variant). A 404 too: the
    listing may come back (410 would tell browsers and crawlers it is gone for good), and the
    code lets a shop say "no longer available" instead of "not found"."""

    code = "product_unavailable"


def metadata(row: Mapping[str, Any] | None, related: Sequence[Mapping[str, Any]],
             related_ok: bool, now_s: float) -> dict[str, Any]:
    """The cached metadata of a product row (adapters/postgres/product_pages.load_product).
    A product shoppers may not see is cached as {"gone": code} (a negative entry)."""
    if row is None or row["status"] in ("DELETED", "DRAFT"):
        return {"gone": ProductNotFound.code}
    if row["status"] != "ACTIVE" or row["seller_status"] != "ACTIVE" or not row["variants"]:
        return {"gone": ProductUnavailable.code}
    images = [url for variant, url in row["images"] if variant is None]
    by_variant: dict[str, list[str]] = {}
    for variant, url in row["images"]:
        if variant is not None:
            by_variant.setdefault(variant, []).append(url)
    count = int(row["review_count"] or 0)
    age_days = max(1.0, (now_s - float(row["created_at"])) / DAY_S)
    return {
        "product_id": str(row["product_id"]), "external_id": row["external_id"],
        "version": row["version"], "title": row["title"], "description": row["description"],
        "brand": row["brand"], "category_id": row["category_id"],
        "seller": {"id": str(row["seller_id"]), "name": row["seller_name"],
                   "rating": row["seller_rating"]},
        "reviews_summary": {
            "avg": round(row["rating_avg"], 2) if count and row["rating_avg"] is not None
            else None,
            "count": count,
            "distribution": {str(n): int(row[f"dist_{n}"] or 0) for n in (5, 4, 3, 2, 1)}},
        "sales_velocity": int(row["sold"] or 0) / age_days,
        "images": images,
        "variants": [{"variant_id": v["variant_id"], "sku": v["sku"],
                      "attributes": v["attributes"] or {},
                      "images": by_variant.get(v["variant_id"], []) + images}
                     for v in row["variants"]],
        "related": [dict(r) for r in related], "related_ok": related_ok,
    }


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def price_snapshot(variants: Iterable[tuple[Item, int | None, Sequence[Offer], DynamicRule | None]],
                   deals: Sequence[Deal], seller_names: Mapping[int, str],
                   deal_names: Mapping[int, str], next_deal_start: datetime | None,
                   now: datetime, ttl_s: int) -> tuple[dict[str, Any], int]:
    """The cached prices of a product's sellable variants — (item as the listing seller sells
    it, compare-at cents, every offer, dynamic rule) each — and how long they stay true (ms):
    at most `ttl_s`, and no later than the first of the deals used to end or the next deal in
    scope to start."""
    out: dict[str, Any] = {}
    used: dict[int, Deal] = {}
    for item, compare, offers, rule in variants:
        priced = []
        for o in offers:
            u = unit_price(item.sold_by(o), deals, rule, now)
            if u.deal is not None:
                used[u.deal.deal_id] = u.deal
            priced.append({
                "seller_id": str(o.seller_id), "seller_name": seller_names.get(o.seller_id),
                "seller_rating": o.seller_rating, "own": o.seller_id == item.seller_id,
                "list_cents": u.list_cents, "unit_cents": u.dynamic_cents,
                "deal_id": str(u.deal.deal_id) if u.deal is not None else None,
                "available": o.available,
                # the warehouse of its units (a seller's own): the stock snapshot has them live
                "warehouse": o.warehouse_id})
        out[str(item.variant_id)] = {"compare_cents": compare, "offers": priced}
    until = _ms(now) + ttl_s * 1000
    for d in used.values():
        until = min(until, _ms(d.ends_at))
    if next_deal_start is not None:
        until = min(until, _ms(next_deal_start))
    shown = {str(d.deal_id): {"deal_id": str(d.deal_id), "name": deal_names.get(d.deal_id) or "",
                              "scope": d.scope, "kind": d.kind, "amount": d.amount,
                              "starts_at": d.starts_at.isoformat(),
                              "ends_at": d.ends_at.isoformat()}
             for d in sorted(used.values(), key=lambda d: d.deal_id)}
    return ({"variants": out, "deals": shown, "valid_until_ms": until},
            max(0, until - _ms(now)))


def _money(cents: int | None) -> float | None:
    return None if cents is None else round(cents / 100.0, 2)


def _offer_json(o: Mapping[str, Any], compare: int | None, units: int | None,
                low_stock: int) -> dict[str, Any]:
    """An offer as shown; `units`: what an add to a cart can take from its seller (None: not
    known, as when the variant's stock is not)."""
    unit = o["unit_cents"]
    was = compared_price(o["own"], compare, o["list_cents"], unit, o["deal_id"] is not None)
    status, hint = stock_status(units, low_stock) if units is not None else ("UNKNOWN", None)
    return {"seller": {"id": o["seller_id"], "name": o["seller_name"],
                       "rating": o["seller_rating"]},
            "price": {"amount": _money(unit), "currency": CURRENCY, "was": _money(was)},
            "in_stock": units is not None and units > 0,
            "inventory": {"status": status, "quantity_hint": hint},
            "deal_id": o["deal_id"]}


def _in_stock(snapshot: Mapping[str, Any] | None) -> bool:
    return snapshot is not None and snapshot["status"] != "OUT_OF_STOCK"


def _available(offer: Mapping[str, Any], snapshot: Mapping[str, Any] | None) -> int:
    """Units an offer can sell now, from the partition owner's snapshot: the listing seller's
    are those not in sellers' own warehouses (0 when unknown), another seller's are its
    warehouse's (as priced, when its offer has none or the snapshot is unknown)."""
    offered: Mapping[str, int] = (snapshot or {}).get("offered") or {}
    if offer["own"]:
        return int(snapshot["available"]) - sum(offered.values()) if snapshot else 0
    if offer.get("warehouse") and snapshot is not None:
        return int(offered.get(offer["warehouse"], 0))
    return int(offer["available"])


def _inventory(snapshot: Mapping[str, object] | None,
               offers: Sequence[Mapping[str, object]], low_stock: int) -> dict[str, object]:
    """What a shopper can buy of the variant now: the units of its offers (the listing
    seller's and those of sellers offering it), not units left in the warehouse of a seller
    whose offer is withdrawn. The owner's status as it is when every unit is on offer."""
    if not snapshot:
        return {"status": "UNKNOWN", "quantity_hint": None}
    # the owner's units and those of the offers' warehouses (an offer without a warehouse
    # has none there), as search results count them
    units = buyable(snapshot, {str(o["warehouse"]) for o in offers
                               if not o["own"] and o.get("warehouse")})
    if units == snapshot["available"]:
        return {"status": snapshot["status"], "quantity_hint": snapshot["quantity_hint"]}
    status, hint = stock_status(units, low_stock)
    return {"status": status, "quantity_hint": hint}


def _variant(v: Mapping[str, Any], p: Mapping[str, Any],
             snap: Mapping[str, Any] | None, low_stock: int = LOW_STOCK) -> dict[str, Any]:
    by_seller = {o["seller_id"]: o for o in p["offers"]}
    vid = int(v["variant_id"])
    # the pricing engine's buy box over what each offer's unit costs (after its seller's deal
    # and rule), as a quote picks the offer it charges for (serve/quotes.py): the page never
    # shows a price a quote would not charge
    box = buy_box(Offer(int(o["seller_id"]), vid, o["unit_cents"], _available(o, snap),
                        o["seller_rating"]) for o in p["offers"])
    winner = by_seller[str(box.winner.seller_id)] if box.winner is not None else None
    others = [by_seller[str(o.seller_id)] for o in box.others]
    # the variant's price: what buying it costs now (the winning offer); with no offer in
    # stock, the listing seller's price
    shown = winner or next((o for o in others if o["own"]), others[0])
    compare = p["compare_cents"]
    out = {"variant_id": v["variant_id"], "sku": v["sku"], "attributes": v["attributes"]}
    out.update({k: val for k, val in v["attributes"].items() if k not in _VARIANT_FIELDS})
    def units(o: Mapping[str, object]) -> int | None:
        return _available(o, snap) if snap or not o["own"] else None

    out.update({
        "price": _offer_json(shown, compare, units(shown), low_stock)["price"],
        # every offer's units; an add takes from one seller's: its offer's `inventory`
        "inventory": _inventory(snap, p["offers"], low_stock),
        "images": v["images"],
        "buy_box": {
            "winner": _offer_json(winner, compare, units(winner), low_stock)
            if winner is not None else None,
            "others": [_offer_json(o, compare, units(o), low_stock) for o in others]},
    })
    return out


def page(meta: Mapping[str, Any], prices: Mapping[str, Any],
         stock: Mapping[str, Mapping[str, Any]], category_path: Sequence[str],
         related_limit: int = RELATED_LIMIT, low_stock: int = LOW_STOCK) -> dict[str, Any]:
    """The PDP answer. `stock`: variant id (text) -> the owner's snapshot {status,
    quantity_hint, available}; a variant without one shows status UNKNOWN, and the listing
    seller's offer of it cannot win the buy box."""
    if "gone" in meta:
        cls = ProductNotFound if meta["gone"] == ProductNotFound.code else ProductUnavailable
        raise cls("product not found" if cls is ProductNotFound
                  else "product is no longer available")
    priced = prices.get("variants", {})
    variants = [_variant(v, priced[v["variant_id"]], stock.get(v["variant_id"]), low_stock)
                for v in meta["variants"] if v["variant_id"] in priced]
    if not variants:  # none sellable any more (the price snapshot is the newer read)
        raise ProductUnavailable("product is no longer available")
    # the product's price: its cheapest variant's, as search shows it (domain.pricing.
    # listing_price); its buy box: the cheapest variant that can be bought now, else that one
    cheapest = min(variants, key=lambda v: v["price"]["amount"])
    top = min(variants, key=lambda v: (v["buy_box"]["winner"] is None, v["price"]["amount"]))
    reviews = meta["reviews_summary"]
    related = []
    for r in meta["related"]:
        snaps = [stock[v] for v in r["variant_ids"] if v in stock]
        if any(_in_stock(s) for s in snaps) if snaps else r["in_stock"]:
            related.append(r["product_id"])
        if len(related) >= related_limit:
            break
    deal_ids = {o["deal_id"] for v in variants
                for o in [v["buy_box"]["winner"], *v["buy_box"]["others"]]
                if o is not None and o["deal_id"] is not None}
    deals = prices.get("deals", {})
    return {
        "product_id": meta["product_id"],
        "external_id": meta["external_id"],
        "title": meta["title"],
        "description": meta["description"],
        "brand": meta["brand"],
        "category_path": list(category_path),
        "price": cheapest["price"],
        "variants": variants,
        "buy_box": {"variant_id": top["variant_id"], **top["buy_box"]},
        "seller": meta["seller"],
        "reviews_summary": reviews,
        "related_products": related,
        "badges": badges(cheapest["price"]["amount"], cheapest["price"]["was"],
                         float(reviews["avg"] or 0.0), int(reviews["count"]),
                         float(meta["sales_velocity"])),
        "deals": [deals[d] for d in sorted(deal_ids, key=int) if d in deals],
        "images": meta["images"],
        "version": meta["version"],
    }


def stock_ids(meta: Mapping[str, Any]) -> tuple[list[int], list[int]]:
    """(the product's variant ids, related candidates' variant ids): one MGET reads both."""
    if "gone" in meta:
        return [], []
    own = [int(v["variant_id"]) for v in meta["variants"]]
    related = [int(v) for r in meta["related"] for v in r["variant_ids"]]
    return own, related
