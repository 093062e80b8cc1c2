"""The shoppers' cart API (public): the storefront's cart, by cookie or X-Cart-Token."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Body, Cookie, Depends, Header, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from adapters.postgres.shopper_carts import CartNotFound
from serve.carts import MAX_QUANTITY, OrderJson, ShopperCartJson
from serve.routes.inventory import idempotency_key
from serve.services import Svc, limit_cart

# response_model=None: the answers are TypedDicts of the domain (typing's, which pydantic
# does not take on Python 3.11); the docs say what they hold
router = APIRouter(tags=["cart"], dependencies=[Depends(limit_cart)])
COOKIE = "aisle_cart"
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
Token = Annotated[str, StringConstraints(pattern=f"^{TOKEN.pattern}$")]
VariantPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Snowflake variant id")]
IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    variant_id: int = Field(ge=1, le=2**63 - 1)
    quantity: StrictInt = Field(default=1, ge=1, le=MAX_QUANTITY)


class CouponIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Annotated[str, StringConstraints(min_length=1, max_length=64,
                                           pattern=r"^[A-Za-z0-9_-]+$")]


def cart_token(
    aisle_cart: Annotated[Token | None, Cookie(description="the storefront's cart")] = None,
    x_cart_token: Annotated[Token | None, Header(
        description="the cart's token (POST /api/v1/cart answers it)")] = None,
) -> str:
    token = x_cart_token or aisle_cart
    if token is None:
        raise CartNotFound("no cart: POST /api/v1/cart makes one")
    return token


CartToken = Annotated[str, Depends(cart_token)]


def _set_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=30 * 86400, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")


@router.post("/api/v1/cart", status_code=201, response_model=None)
async def create_cart(svc: Svc, request: Request, response: Response,
                      aisle_cart: Annotated[str | None, Cookie()] = None,
                      x_cart_token: Annotated[str | None, Header()] = None
                      ) -> ShopperCartJson:
    """A new cart (the storefront keeps its token in an httpOnly cookie; other clients send
    `cart_token` back as `X-Cart-Token`). With the X-Cart-Token or the cookie of an open cart:
    that cart (200). A token that names no open cart (empty, malformed, checked out) is no
    error here: it is why a new cart is asked for."""
    for mine in (x_cart_token, aisle_cart):
        if mine is None or not TOKEN.fullmatch(mine):
            continue
        try:
            found = await svc.carts.view(mine)
        except CartNotFound:
            continue
        if found["status"] == "OPEN":
            response.status_code = 200
            return found
    token, cart = await svc.carts.create()
    _set_cookie(request, response, token)
    return {**cart, "cart_token": token}


@router.get("/api/v1/cart", response_model=None)
async def get_cart(svc: Svc, token: CartToken) -> ShopperCartJson:
    """The cart: lines with their holds' expiry, the quote checkout would charge now."""
    return await svc.carts.view(token)


@router.post("/api/v1/cart/items", response_model=None)
async def add_item(svc: Svc, token: CartToken, body: ItemIn,
                   idempotency: IdempotencyHeader = None) -> ShopperCartJson:
    """Adds units of a variant and holds them now (15 minutes): 409 `insufficient_stock`
    if they are not there. Retried with the same Idempotency-Key: held once."""
    return await svc.carts.add(token, body.variant_id, body.quantity,
                               idempotency_key(idempotency, None))


@router.delete("/api/v1/cart/items/{variant_id}", response_model=None)
async def remove_item(svc: Svc, token: CartToken, variant_id: VariantPath) -> ShopperCartJson:
    """Removes the variant's line: its units go back on sale."""
    return await svc.carts.remove(token, variant_id)


@router.put("/api/v1/cart/coupon", response_model=None)
async def apply_coupon(svc: Svc, token: CartToken, body: CouponIn) -> ShopperCartJson:
    """Applies a coupon to the cart (422 naming `coupon` if it does not apply)."""
    return await svc.carts.set_coupon(token, body.code)


@router.delete("/api/v1/cart/coupon", response_model=None)
async def remove_coupon(svc: Svc, token: CartToken) -> ShopperCartJson:
    return await svc.carts.set_coupon(token, None)


ExpectedTotal = Annotated[StrictInt | None, Body(
    embed=True, ge=0, le=10**13,
    description="the total the shopper was shown: a cart whose total is now another is not "
                "bought (409 cart_changed, its new total in `total_cents`)")]


@router.post("/api/v1/cart/checkout", response_model=None)
async def checkout(svc: Svc, token: CartToken,
                   expected_total_cents: ExpectedTotal = None) -> OrderJson:
    """Buys the cart at the price quoted now: the holds are committed (sold), the coupon
    redeemed once. Repeating it answers the same order. Send `expected_total_cents` (the
    total shown): if the cart's total changed since (a price, another tab's add), nothing is
    bought and the answer is 409 `cart_changed`. A coupon that does not apply now is
    refused (422 naming `coupon`: remove it or change the cart)."""
    return await svc.carts.checkout(token, expected_total_cents)
