"""Shoppers' carts: the public cart API behind the storefront.

A cart is a row found by the hash of its token (an httpOnly cookie for the storefront, the
`X-Cart-Token` header for other clients): nobody can name another shopper's cart. Adding to
the cart reserves the units at once (a hold: an inventory reservation of its own, 15 minutes
by default, shown with its countdown); removing a line releases its holds; checkout prices the
cart (deal, dynamic price, the cart's coupon), records that price and redeems the coupon, then
commits every hold. Every step is idempotent: an add retried with its Idempotency-Key holds
once, a checkout retried answers the same order.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import hashlib
import json
import logging
import secrets
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import NotRequired, TypedDict, TypeGuard, TypeVar

import asyncpg

from adapters.postgres import shopper_carts as store
from adapters.postgres.idempotency import bound_key
from adapters.postgres.pricing_repo import (
    PricingInputs,
    accept_quote,
    load_pricing,
    offer_warehouses,
    void_quote,
)
from adapters.postgres.pricing_repo.inputs import VariantPricing
from adapters.postgres.shopper_carts import CartRow, Hold, VariantInfo
from domain.errors import AisleError, Conflict, ValidationFailed
from domain.inventory import InsufficientStock, ReservationNotFound, UnknownVariant
from domain.inventory_api import Inventory
from domain.inventory_slots import cart_of_key
from domain.pricing import (
    CouponRejected,
    Offer,
    charged_cents,
    holding,
    priced_buy_box,
    read_quote,
)
from domain.pricing.quotes import QuotePayload
from domain.pricing.tokens import SignedQuote
from serve.quotes import QuoteService

log = logging.getLogger("aisle.carts")
T = TypeVar("T")
MAX_LINES = 50
MAX_QUANTITY = 20  # per line
LEASE_TERM_S = 60.0  # a change to a cart holds it this long at most (a replica that died)
LEASE_WAIT_S = 5.0  # another change waits this long for it, then 409 cart_busy


class CartLineJson(TypedDict):
    variant_id: str
    product_id: str
    title: str
    sku: str
    attributes: dict[str, str]
    image_url: str | None
    quantity: int
    expires_at: str  # the earliest of its holds (ISO 8601)
    holds: list[str]  # reservation ids
    seller_id: str | None  # whose units it holds: another seller's offer; None: the listing's


class ShopperCartJson(TypedDict):
    cart_id: str
    status: str  # OPEN | CHECKED_OUT
    coupon: str | None
    lines: list[CartLineJson]
    expired: list[str]  # variant ids whose holds ran out since the last look (dropped)
    quote: QuotePayload | None  # what checkout would charge now (None: empty cart)
    quote_error: NotRequired[str]  # why there is no quote (e.g. a variant no longer sold)
    # why the cart's coupon does not apply now (the quote is then the price without it)
    coupon_error: NotRequired[str]
    order: NotRequired[OrderJson]
    cart_token: NotRequired[str]  # only when the cart is made (POST /api/v1/cart)


class OrderJson(TypedDict):
    order_id: str
    cart_id: str
    quote_id: str
    total_cents: int
    currency: str
    lines: list[CartLineJson]
    quote: QuotePayload
    placed_at: str


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


@dataclasses.dataclass
class CartService:
    pool: asyncpg.Pool
    inventory: Inventory
    quotes: QuoteService
    hold_s: int  # how long an add to cart holds the units
    _giving: set[asyncio.Task[None]] = dataclasses.field(default_factory=set, init=False)

    async def create(self) -> tuple[str, ShopperCartJson]:
        """A new, empty cart and its token (shown once: only its hash is kept)."""
        token = new_token()
        cart_id = "c" + secrets.token_hex(12)
        async with self.pool.acquire() as conn:
            await store.create(conn, cart_id, token_hash(token))
        return token, await self.view(token)

    async def _row(self, token: str) -> CartRow:
        async with self.pool.acquire() as conn:
            return await store.find(conn, token_hash(token))

    async def _change(self, token: str, change: Callable[[CartRow], Awaitable[T]]) -> T:
        """`change` of the cart, holding it (`_exclusive`), run to its end even when its
        caller hangs up (Serve cancels the request, and the Ray calls made in its context):
        units held are recorded as the cart's, and units given back are taken out of it, never
        left half done (held by no cart until they expire). A change still waiting for the
        cart when its caller leaves is dropped: a retry does it, not this one too."""
        begun = asyncio.Event()

        async def run() -> T:
            async with self._exclusive(token) as row:
                begun.set()
                return await change(row)

        task = asyncio.get_running_loop().create_task(run(), context=contextvars.Context())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # told to its caller
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not begun.is_set():
                task.cancel()
            raise

    @contextlib.asynccontextmanager
    async def _exclusive(self, token: str) -> AsyncIterator[CartRow]:
        """The cart, for one change at a time (an add, a removal, a coupon, a checkout): its
        lease is taken (waited for up to LEASE_WAIT_S, then 409 `cart_busy`) and given back
        when the block ends; no connection is held meanwhile. A removal racing a checkout
        then either comes first (the order leaves its line out) or finds the cart checked
        out, never half of each."""
        key, lease = token_hash(token), secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + LEASE_WAIT_S
        renewing: asyncio.Task[None] | None = None
        taking: asyncio.Task[bool] | None = None
        try:
            while True:
                # run to its answer even when its caller leaves (`_give_back` waits for it)
                taking = loop.create_task(self._take(key, lease))
                if await asyncio.shield(taking):
                    break
                if loop.time() >= give_up:
                    raise Conflict("another change to this cart is under way: try again",
                                   "cart_busy", {"cart": "busy"})
                await asyncio.sleep(0.05)
            renewing = loop.create_task(self._renew(key, lease))
            async with self.pool.acquire() as conn:
                row = await store.find(conn, key)
            yield row
        finally:
            if renewing is not None:
                renewing.cancel()
            if taking is not None:
                # given back whatever happened (a lease not ours is left alone); a change
                # that held the lease waits for that up to LEASE_WAIT_S (its caller's next
                # change finds the cart free), any other answer goes without waiting
                giving = loop.create_task(self._give_back(key, lease, taking))
                self._giving.add(giving)
                giving.add_done_callback(self._giving.discard)
                if renewing is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(giving), LEASE_WAIT_S)

    async def _take(self, key: bytes, lease: str) -> bool:
        async with self.pool.acquire(timeout=LEASE_WAIT_S) as conn:
            return await store.take_lease(conn, key, lease, LEASE_TERM_S)

    async def _give_back(self, key: bytes, lease: str, taking: asyncio.Task[bool]) -> None:
        """Gives the lease back once the statement that took it has answered. A caller that
        left while PostgreSQL was stalled took the lease when the server resumed, after its
        change was given up: given back then, not a minute later (LEASE_TERM_S). A take whose
        answer did not come in time may yet apply: given back twice, a second apart (a refused
        or lost connection took nothing; one that applied just before its connection died
        runs out by itself). A give-back that fails is tried again each second until the lease
        runs out by itself."""
        await asyncio.wait([taking])
        failed = asyncio.CancelledError() if taking.cancelled() else taking.exception()
        if failed is None and not taking.result():
            return  # not taken: another change holds the cart
        if failed is not None and not isinstance(failed, TimeoutError):
            return  # no such cart, no connection, or the statement refused
        loop = asyncio.get_running_loop()
        ends = loop.time() + LEASE_TERM_S
        gives = 1 if failed is None else 2
        while gives and loop.time() < ends:
            try:
                async with self.pool.acquire(timeout=LEASE_WAIT_S) as conn:
                    await store.end_lease(conn, key, lease)
                gives -= 1
            except Exception as exc:
                log.warning("cart lease not given back yet (it runs out in %.0f s): %r",
                            ends - loop.time(), exc)
            if gives:
                await asyncio.sleep(1.0)

    async def _renew(self, key: bytes, lease: str) -> None:
        """Keeps the lease while its change runs (an inventory call may retry for 30 s)."""
        while True:
            await asyncio.sleep(LEASE_TERM_S / 3)
            try:
                async with self.pool.acquire() as conn:
                    await store.renew_lease(conn, key, lease, LEASE_TERM_S)
            except Exception as exc:
                log.warning("cart lease not renewed: %r", exc)

    async def view(self, token: str) -> ShopperCartJson:
        """The cart: its lines (holds run out: those lines are dropped and named in
        `expired`), and the quote checkout would charge now."""
        row = await self._row(token)
        if row.status == "CHECKED_OUT":
            order: OrderJson = json.loads(row.order_json or "{}")
            return {"cart_id": row.cart_id, "status": row.status, "coupon": row.coupon,
                    "lines": order.get("lines", []), "expired": [], "quote": order.get("quote"),
                    "order": order}
        now = datetime.now(UTC)
        gone = [h for h in row.holds if h.expires_at <= now and not h.committed]
        if gone:
            async with self.pool.acquire() as conn:
                await store.drop_holds(conn, row.cart_id, [h.reservation_id for h in gone])
        live = [h for h in row.holds if h.expires_at > now or h.committed]
        info, signed = await self._priced(row.cart_id, live)
        lines = _lines_of(live, info)
        out: ShopperCartJson = {"cart_id": row.cart_id, "status": row.status, "coupon": row.coupon,
                         "lines": lines, "expired": sorted({str(h.variant_id) for h in gone}
                                                           - {x["variant_id"] for x in lines}),
                         "quote": None}
        if lines and _standing(signed, lines, info, row.coupon):
            # a checkout that did not finish accepted a price: while the cart is as it was,
            # that price stands (checkout charges it), so it is the one shown
            out["quote"] = _payload(signed)
        elif lines:
            try:
                out["quote"] = await self._quote(row.cart_id, lines, row.coupon)
            except CouponRejected as exc:
                # priced without it, and said why (checkout refuses it until it is removed
                # or applies again: nobody is charged a total they were not shown)
                out["coupon_error"] = exc.message
                try:
                    out["quote"] = await self._quote(row.cart_id, lines, None)
                except AisleError as again:
                    out["quote_error"] = again.message
            except AisleError as exc:
                out["quote_error"] = exc.message
        return out

    async def _priced(self, cart_id: str, holds: list[Hold],
                      ) -> tuple[dict[int, VariantInfo], SignedQuote | None]:
        """What the holds' variants are, and the price a checkout of the cart accepted and
        did not finish (None: none)."""
        async with self.pool.acquire() as conn:
            info = await store.variants(conn, list({h.variant_id for h in holds}))
            signed = await store.accepted_quote(conn, f"shopcart:{cart_id}") if holds else None
        return info, signed

    async def _lines(self, holds: list[Hold]) -> list[CartLineJson]:
        async with self.pool.acquire() as conn:
            info = await store.variants(conn, list({h.variant_id for h in holds}))
        return _lines_of(holds, info)

    async def _quote(self, cart_id: str, lines: list[CartLineJson],
                     coupon: str | None) -> QuotePayload:
        items = [(int(x["variant_id"]), x["quantity"]) for x in lines]
        return _payload(await self.quotes.make(items, coupon, _customer(cart_id),
                                               held=dict(items), sellers=_sellers(lines)))

    async def add(self, token: str, variant_id: int, quantity: int,
                  key: str | None) -> ShopperCartJson:
        """Holds `quantity` more units of the variant (409 naming it if they are not there).
        With `key` (Idempotency-Key), a retry holds nothing more."""
        await self._change(token, lambda row: self._add(_open(row), variant_id, quantity, key))
        return await self.view(token)

    async def _add(self, row: CartRow, variant_id: int, quantity: int,
                   key: str | None) -> None:
        if len({h.variant_id for h in row.holds} | {variant_id}) > MAX_LINES:
            raise ValidationFailed({"variant_id": f"a cart holds at most {MAX_LINES} lines"})
        held = sum(h.quantity for h in row.holds if h.variant_id == variant_id)
        if held + quantity > MAX_QUANTITY:
            raise ValidationFailed({"quantity": f"at most {MAX_QUANTITY} of a variant per "
                                                f"cart ({held} in it)"})
        # a key is bound to the add it came with: another variant's or quantity's add with it
        # is refused (422), even where it would hold other units (another partition's)
        async with bound_key(self.pool, f"cart {row.cart_id} add", key,
                             {"variant_id": variant_id, "quantity": quantity}):
            await self._hold(row, variant_id, quantity, key)

    async def _hold(self, row: CartRow, variant_id: int, quantity: int,
                    key: str | None) -> None:
        async with self.pool.acquire() as conn:
            info = (await store.variants(conn, [variant_id])).get(variant_id)
        if info is None or not info.active:
            raise UnknownVariant(f"variant {variant_id} is not for sale")
        # the inventory key is the cart's and the shopper's key: the same add, the same hold
        # (a move of the line to another seller holds under a key of its own)
        ikey = f"cart:{row.cart_id}:{key or uuid.uuid4().hex}"
        mkey = f"{ikey}:move"
        if {cart_of_key(k, [variant_id]) for k in (ikey, mkey)} & {
                h.reservation_id for h in row.holds}:
            return  # a retried add: held already
        line = [h for h in row.holds if h.variant_id == variant_id]
        if line and not any(h.committed for h in line):
            cheaper = await self._cheaper(variant_id, line)
            if cheaper is not None and await self._move(row, line, cheaper, quantity, mkey):
                return
        # whose units: those the line holds already, else the buy box's winner's now
        seller, warehouse = (await self._source(row, variant_id) if line
                             else await self._winner(variant_id))
        got = await self.inventory.reserve([(variant_id, quantity, warehouse)], key=ikey,
                                           ttl_s=self.hold_s)
        if [(int(x["variant_id"]), x["quantity"]) for x in got["lines"]] != [
                (variant_id, quantity)]:
            raise ValidationFailed({"Idempotency-Key": "was used for another add"})
        expires = got["expires_at_ms"] or 0
        async with self.pool.acquire() as conn:
            # whose units the hold has: a retried add gets the first try's reservation, made
            # when the buy box may have been someone else's
            seller = await store.warehouse_seller(conn, [x["warehouse_id"]
                                                         for x in got["lines"]])
            await store.add_hold(conn, row.cart_id, Hold(
                got["reservation_id"], variant_id, quantity,
                datetime.fromtimestamp(expires / 1000, UTC), seller))

    async def _cheaper(self, variant_id: int, line: list[Hold]
                       ) -> tuple[int | None, str | None] | None:
        """The seller (None: the listing seller) and warehouse a line should move to: the
        buy box's winner when it charges strictly less a unit than the line's seller does
        now, counting the units the line holds as its seller's (as the cart's quote does).
        None to keep the line where it is, also when its seller no longer offers the
        variant (the add then says so: 409 `offer_withdrawn`)."""
        vp, inputs, now = await self._pricing(variant_id)
        if vp is None:
            return None
        holder = line[0].seller_id or vp.item.seller_id
        offers = holding(vp.offers, holder, sum(h.quantity for h in line if h.expires_at > now))
        mine = next((o for o in offers if o.seller_id == holder), None)
        winner = priced_buy_box(vp.item, offers, inputs.deals, vp.rule, now).winner
        if mine is None or winner is None or winner.seller_id == holder:
            return None

        def charged(o: Offer) -> int:
            return charged_cents(vp.item, o, inputs.deals, vp.rule, now)

        if charged(winner) >= charged(mine):
            return None  # a tie (broken by rating) is no reason to move
        return _reservable(vp, winner)

    async def _move(self, row: CartRow, line: list[Hold], winner: tuple[int | None, str | None],
                    quantity: int, mkey: str) -> bool:
        """An add to a line whose seller now charges more than another (its price went up,
        or another's went down): the line's units and `quantity` more are held from that
        seller instead, and the line's holds released, so the line is bought at the price
        the shop shows. False (nothing done) when that seller has not enough units or the
        line's reservations were sold by a checkout that did not finish: the add then takes
        from the line's seller, as before."""
        variant_id, now = line[0].variant_id, datetime.now(UTC)
        async def sold(h: Hold) -> bool:
            try:
                return (await self.inventory.get(h.reservation_id))["status"] == "COMMITTED"
            except ReservationNotFound:
                return False  # never made (a crash between hold and record)

        if any(await asyncio.gather(*(sold(h) for h in line))):
            return False
        # the units the line holds now (an expired hold's are no longer the shopper's)
        want = quantity + sum(h.quantity for h in line if h.expires_at > now)
        try:
            got = await self.inventory.reserve([(variant_id, want, winner[1])], key=mkey,
                                               ttl_s=self.hold_s)
        except InsufficientStock:
            return False
        if [(int(x["variant_id"]), x["quantity"]) for x in got["lines"]] != [
                (variant_id, want)]:
            # a first try that crashed before recording its move, when the line held other
            # units: let the TTL free that one; this add takes from the line's seller
            return False
        async with self.pool.acquire() as conn:
            seller = await store.warehouse_seller(conn, [x["warehouse_id"]
                                                         for x in got["lines"]])
            async with conn.transaction():  # the line is the winner's, whole, at once
                await store.drop_holds(conn, row.cart_id, [h.reservation_id for h in line])
                await store.add_hold(conn, row.cart_id, Hold(
                    got["reservation_id"], variant_id, want,
                    datetime.fromtimestamp((got["expires_at_ms"] or 0) / 1000, UTC), seller))
        for h in line:  # back on sale (a crash or an outage here: their TTL frees them)
            try:
                await self.inventory.release(h.reservation_id)
            except (ReservationNotFound, Conflict):
                pass  # never made, or closed already
            except AisleError as exc:
                log.warning("a moved line's hold %s stays until its TTL: %r",
                            h.reservation_id, exc)
        return True

    async def _winner(self, variant_id: int) -> tuple[int | None, str | None]:
        """The seller (None: the listing seller, or nobody) whose offer wins the buy box now,
        and the warehouse of its units (None: the platform's)."""
        vp, inputs, now = await self._pricing(variant_id)
        winner = (priced_buy_box(vp.item, vp.offers, inputs.deals, vp.rule, now).winner
                  if vp is not None else None)
        found = _reservable(vp, winner) if vp is not None and winner is not None else None
        return found or (None, None)

    async def _pricing(self, variant_id: int
                       ) -> tuple[VariantPricing | None, PricingInputs, datetime]:
        """The variant's pricing inputs now (None: not for sale), and that now."""
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn:
            inputs = await load_pricing(conn, [variant_id], now)
        return inputs.variants.get(variant_id), inputs, now

    async def _source(self, row: CartRow, variant_id: int) -> tuple[int | None, str | None]:
        """The seller (None: the listing seller) and warehouse (None: the platform's) an add
        of the variant takes units from: the line's seller if the cart has the variant, else
        the buy box's winner, when it is another seller's offer with stock of its own."""
        for h in row.holds:
            if h.variant_id == variant_id:
                if h.seller_id is None:
                    return None, None
                async with self.pool.acquire() as conn:
                    found = await offer_warehouses(conn, [(variant_id, h.seller_id)])
                if (variant_id, h.seller_id) not in found:
                    raise Conflict("the seller of this line no longer offers it: remove it "
                                   "and add it again", "offer_withdrawn",
                                   {"variant_id": "offer withdrawn"})
                return h.seller_id, found[(variant_id, h.seller_id)]
        return await self._winner(variant_id)

    async def remove(self, token: str, variant_id: int) -> ShopperCartJson:
        """Releases every hold of the variant's line."""
        await self._change(token, lambda row: self._remove(_open(row), variant_id))
        return await self.view(token)

    async def _remove(self, row: CartRow, variant_id: int) -> None:
        holds = [h for h in row.holds if h.variant_id == variant_id]
        if not holds:
            raise ValidationFailed({"variant_id": "not in the cart"})
        sold: list[Hold] = [h for h in holds if h.committed]
        holds = [h for h in holds if not h.committed]

        async def release(h: Hold) -> None:
            try:
                await self.inventory.release(h.reservation_id)
            except ReservationNotFound:
                pass  # never made (a crash between hold and record): nothing to give back
            except Conflict as exc:
                if exc.code != "reservation_closed":
                    raise
                if exc.data.get("status") == "COMMITTED":
                    sold.append(h)  # by a checkout that did not finish: it finishes it
                # else expired or released already: nothing held

        await asyncio.gather(*(release(h) for h in holds))  # one round for all the holds
        async with self.pool.acquire() as conn:
            await store.drop_holds(conn, row.cart_id,
                                   [h.reservation_id for h in holds if h not in sold])
            await store.mark_committed(conn, row.cart_id, [h.reservation_id for h in sold])
        if sold:
            raise Conflict("this line was sold by a checkout that did not finish: check out "
                           "again", "line_sold", {"variant_id": "sold: check out again"})

    async def set_coupon(self, token: str, code: str | None) -> ShopperCartJson:
        """Applies a coupon (422 naming `coupon` if it does not exist or does not apply to
        the cart now), or removes it (None)."""
        async with self._exclusive(token) as row:
            _open(row)
            if code is not None:
                code = code.strip().upper()
                lines = await self._lines([h for h in row.holds
                                           if h.expires_at > datetime.now(UTC)])
                if not lines:
                    raise ValidationFailed({"coupon": "add something to the cart first"})
                await self._quote(row.cart_id, lines, code)  # raises if it is no good
            async with self.pool.acquire() as conn:
                await store.set_coupon(conn, row.cart_id, code)
        return await self.view(token)

    async def checkout(self, token: str, expected_total: int | None = None) -> OrderJson:
        """Prices the cart, records the price (coupon redeemed once), commits every hold.
        Answers the same order when repeated. With `expected_total` (the total the shopper
        was shown), a cart whose total is now another is not bought: 409 `cart_changed`."""
        return await self._change(token, lambda row: self._checkout(row, expected_total))

    async def _checkout(self, row: CartRow, expected_total: int | None = None) -> OrderJson:
        if row.status == "CHECKED_OUT":
            order: OrderJson = json.loads(row.order_json or "{}")
            await self._commit(row.cart_id, row.holds)  # a retry after a partial commit
            return order
        now = datetime.now(UTC)
        # a hold sold by an earlier try is live whatever its expiry: this try finishes it
        live = [h for h in row.holds
                if h.committed or h.expires_at > now + timedelta(seconds=5)]
        if not row.holds:
            raise ValidationFailed({"cart": "is empty"})
        if len(live) != len(row.holds):
            raise Conflict("some holds ran out: look at the cart again", "hold_expired",
                           {"cart": "holds expired"})
        reference = f"shopcart:{row.cart_id}"
        info, signed = await self._priced(row.cart_id, live)
        lines = _lines_of(live, info)
        if _standing(signed, lines, info, row.coupon):
            # accepted by an earlier try that did not finish: that price stands
            payload, quote_id = _payload(signed), signed["quote_id"]
            _as_shown(payload, expected_total)
        else:
            if signed is not None:
                # accepted for the cart as it was (a line removed, another seller's units,
                # another coupon): that price is void, its coupon's use given back first
                async with self.pool.acquire() as conn:
                    await void_quote(conn, reference)
            items = [(int(x["variant_id"]), x["quantity"]) for x in lines]
            made = await self.quotes.make(items, row.coupon, _customer(row.cart_id),
                                          held=dict(items), sellers=_sellers(lines))
            _as_shown(_payload(made), expected_total)  # before anything is accepted
            q = read_quote(made["quote_token"], self.quotes.secret, now)
            async with self.pool.acquire() as conn:
                await accept_quote(conn, q, reference)  # coupon redeemed here, once
            payload, quote_id = _payload(made), made["quote_id"]
        try:
            await self._commit(row.cart_id, row.holds)
        except HoldsRanOut as exc:
            if not exc.sold_left:  # nothing of it bought: the price accepted is void
                async with self.pool.acquire() as conn:
                    await void_quote(conn, reference)  # its coupon's use given back
            raise
        order: OrderJson = {  # type: ignore[no-redef]
            "order_id": "o" + hashlib.sha256(reference.encode()).hexdigest()[:20],
            "cart_id": row.cart_id, "quote_id": quote_id,
            "total_cents": payload["total_cents"], "currency": payload["currency"],
            "lines": lines, "quote": payload, "placed_at": _iso(now)}
        async with self.pool.acquire() as conn:
            recorded = await store.check_out(conn, row.cart_id, order)
        answer: OrderJson = json.loads(recorded)
        return answer

    async def _commit(self, cart_id: str, holds: tuple[Hold, ...] | list[Hold]) -> None:
        """Commits every hold not recorded as sold yet; those that went through are
        recorded as sold (kept in the cart until an order has them), whatever happened to the
        others. (A sold one is not committed again: its partition's record of the commit may
        be pruned by then, AISLE_RETENTION_DAYS.)"""
        earlier = any(h.committed for h in holds)
        holds = [h for h in holds if not h.committed]
        done = await asyncio.gather(*(self.inventory.commit(h.reservation_id) for h in holds),
                                    return_exceptions=True)
        sold = [h.reservation_id for h, d in zip(holds, done, strict=True)
                if not isinstance(d, BaseException)]
        # closed unsold (ran out while its partition restarted, or released): gone from the
        # cart, which then shows what it holds and what was sold
        dead = [h.reservation_id for h, d in zip(holds, done, strict=True)
                if isinstance(d, Conflict) and d.code == "reservation_closed"
                and d.data.get("status") in ("EXPIRED", "RELEASED")]
        if sold or dead:
            async with self.pool.acquire() as conn:
                await store.mark_committed(conn, cart_id, sold)
                await store.drop_holds(conn, cart_id, dead)
        for h, d in zip(holds, done, strict=True):
            if isinstance(d, BaseException) and h.reservation_id not in dead:
                raise d  # outcome unknown (503): a retry finishes it
        if dead:
            raise HoldsRanOut(bool(sold) or earlier)


def _reservable(vp: VariantPricing, winner: Offer) -> tuple[int | None, str | None] | None:
    """Where a cart takes `winner`'s units: (None, None) for the listing seller's (the
    platform's warehouses), (seller, its warehouse) for another seller's offer; None for an
    offer made before offers had stock (no warehouse: not reservable)."""
    if winner.seller_id == vp.item.seller_id:
        return None, None
    return None if winner.warehouse_id is None else (winner.seller_id, winner.warehouse_id)


class HoldsRanOut(Conflict):
    """A checkout's holds closed unsold while it committed them (run out while a partition
    restarted, or released): 409 hold_expired; `sold_left`: lines of the cart were sold (by
    this try or an earlier one), which a checkout again finishes."""

    def __init__(self, sold_left: bool) -> None:
        super().__init__("a hold ran out while the cart was checked out: "
                         + ("what was sold stays in the cart; " if sold_left else "")
                         + "look at the cart and check out again", "hold_expired",
                         {"cart": "holds expired"})
        self.sold_left = sold_left


def _lines_of(holds: list[Hold], info: dict[int, VariantInfo]) -> list[CartLineJson]:
    """The cart's lines: its holds by variant, with what `info` says of each."""
    by_variant: dict[int, list[Hold]] = defaultdict(list)
    for h in holds:
        by_variant[h.variant_id].append(h)
    lines: list[CartLineJson] = []
    for v, hs in by_variant.items():
        i = info.get(v) or VariantInfo(v, 0, "(no longer sold)", "", {}, None, False)
        lines.append({
            "variant_id": str(v), "product_id": str(i.product_id), "title": i.title,
            "sku": i.sku, "attributes": i.attributes, "image_url": i.image_url,
            "quantity": sum(h.quantity for h in hs),
            "expires_at": _iso(min(h.expires_at for h in hs)),
            "holds": [h.reservation_id for h in hs],
            "seller_id": None if hs[0].seller_id is None else str(hs[0].seller_id)})
    return lines


def _open(row: CartRow) -> CartRow:
    if row.status != "OPEN":
        raise Conflict("this cart is checked out: POST /api/v1/cart starts a new one",
                       "cart_checked_out", {"cart": "checked out"})
    return row


Bought = tuple[list[tuple[str, int, str]], str | None]  # (variant, quantity, seller)s, coupon


def _bought(q: QuotePayload) -> Bought:
    """What a quote sells."""
    return sorted((x["variant_id"], x["quantity"], x["seller_id"]) for x in q["lines"]), \
        q["coupon"]


def _standing(signed: SignedQuote | None, lines: list[CartLineJson],
              info: dict[int, VariantInfo], coupon: str | None) -> TypeGuard[SignedQuote]:
    """Whether the price a checkout accepted (`signed`) still stands: the cart sells what
    it sold, with the same coupon."""
    return signed is not None and _bought(signed) == _buying(lines, info, coupon)


def _buying(lines: list[CartLineJson], info: dict[int, VariantInfo],
            coupon: str | None) -> Bought:
    """What the cart buys now, as `_bought` reads a quote: a line naming no seller sells the
    listing seller's units."""
    def seller(x: CartLineJson) -> str:
        listed = info.get(int(x["variant_id"]))
        return x["seller_id"] or (str(listed.seller_id) if listed is not None else "")

    return sorted((x["variant_id"], x["quantity"], seller(x)) for x in lines), coupon


def _payload(q: QuotePayload) -> QuotePayload:
    """The quote itself, without what signing it added (id, customer, token)."""
    return {"currency": q["currency"], "coupon": q["coupon"], "lines": q["lines"],
            "subtotal_cents": q["subtotal_cents"], "discount_cents": q["discount_cents"],
            "total_cents": q["total_cents"], "priced_at": q["priced_at"]}


class CartChanged(Conflict):
    def __init__(self, total: int, expected: int, currency: str) -> None:
        super().__init__(
            f"the cart's total is now {total / 100:.2f} {currency}, not the "
            f"{expected / 100:.2f} {currency} shown: look at the cart again", "cart_changed",
            {"expected_total_cents": f"the total is now {total} cents"}, total_cents=total)


def _as_shown(payload: QuotePayload, expected_total: int | None) -> None:
    """CartChanged unless the total about to be charged is the one the shopper was shown
    (None: no total was sent, the price now is charged)."""
    if expected_total is not None and payload["total_cents"] != expected_total:
        raise CartChanged(payload["total_cents"], expected_total, payload["currency"])


def _sellers(lines: list[CartLineJson]) -> dict[int, int | None]:
    """Each line's seller, as the quote prices it (None: the listing seller)."""
    return {int(x["variant_id"]): None if x["seller_id"] is None else int(x["seller_id"])
            for x in lines}


def _customer(cart_id: str) -> str:
    """Coupons' per-customer limits count per cart for shoppers without an account."""
    return f"cart:{cart_id}"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
