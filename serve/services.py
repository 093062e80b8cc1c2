"""What the HTTP routes use, built once per Gateway replica (serve/app.py) and found by each
request through the FastAPI app's state (one app per replica process): no globals of Serve's.

Also the request guards every area shares: the seller of an API key and the internal token.
Both are dependencies, so they run before a body is validated: a request without a valid key
gets 401 whatever its body.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
from typing import Annotated, Any

import asyncpg
import redis.asyncio as aioredis
from fastapi import Depends, Header, Request
from ray.actor import ActorHandle

from actors.inventory_client import InventoryClient
from adapters.cache.breaker import Breaker
from adapters.postgres.catalog_repo import CatalogRepository
from adapters.postgres.worker_lease import LeasedSnowflake
from adapters.rate_limit import RateLimiter
from adapters.settings import Network, Settings
from domain.catalog import Limits
from domain.errors import DatabaseUnavailable, Unauthorized
from serve.carts import CartService
from serve.jobs import Jobs
from serve.media import MediaService
from serve.pdp import ProductPages
from serve.quotes import QuoteService
from serve.search import SearchService

Json = dict[str, Any]  # a JSON object as the API answers it (keys vary by resource)


@dataclasses.dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    redis: aioredis.Redis
    ids: LeasedSnowflake
    limits: Limits
    catalog: CatalogRepository
    inventory: InventoryClient
    search: SearchService
    pages: ProductPages
    quotes: QuoteService
    carts: CartService  # shoppers' carts (the storefront's)
    media: MediaService  # seller image uploads
    builder: ActorHandle  # the index builder (actors/index_builder.py)
    repricer: ActorHandle  # the dynamic pricing pass (actors/repricer.py)
    jobs: Jobs  # long internal operations, in the background
    limiter: RateLimiter  # request rates, shared in Redis
    # PostgreSQL's breaker, the product pages' (`pages.database`: one per replica), also
    # opened by a request that failed because PostgreSQL could not be reached
    # (serve/_errors.py): while open, product pages come as last assembled and the APIs that
    # need it (seller, internal, cart) answer 503 at once instead of each waiting
    database: Breaker


def database_up(svc: Services) -> None:
    """503 `database_unavailable` at once while PostgreSQL's breaker is open."""
    if not svc.database.closed:
        raise DatabaseUnavailable("the database cannot be reached: nothing was changed; "
                                  "retry shortly")


def services_of(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def _services(request: Request) -> Services:  # a dependency that never suspends
    return services_of(request)


def bearer(authorization: str | None, what: str = "api key") -> str:
    """The token of an `Authorization: Bearer <what>` header (`what` names it in the 401)."""
    if not authorization:
        raise Unauthorized(f"missing Authorization: Bearer <{what}>")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(f"Authorization must be 'Bearer <{what}>'")
    return token.strip()


async def current_seller(request: Request,
                         authorization: Annotated[str | None, Header()] = None) -> int:
    """Seller of the request's API key."""
    svc = services_of(request)
    token = bearer(authorization)
    database_up(svc)
    found = await svc.catalog.seller_for_key(token)
    if found is None:
        raise Unauthorized("invalid API key")
    return found[0]


async def require_internal(request: Request,
                           authorization: Annotated[str | None, Header()] = None) -> None:
    """Internal callers only (checkout, warehouse systems): the internal token."""
    svc = services_of(request)
    if not _is_internal(svc, bearer(authorization, "internal token")):
        raise Unauthorized("invalid internal token")
    database_up(svc)


def _is_internal(svc: Services, token: str) -> bool:
    expected = svc.settings.internal_token
    return expected is not None and hmac.compare_digest(token.encode(), expected.encode())


def is_internal_caller(request: Request) -> bool:
    """The request carries the internal token (no error when it does not)."""
    return _is_internal(services_of(request),
                        _bearer_or_empty(request.headers.get("authorization")))


def _bearer_or_empty(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer` header, or "" (rate limits: no credentials
    needed)."""
    try:
        return bearer(authorization)
    except Unauthorized:
        return ""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address, also as some balancers write it with its port (`203.0.113.7:4711`,
    `[2001:db8::1]:4711`); None for anything else (`unknown`)."""
    for form in (text, text.rsplit(":", 1)[0].removeprefix("[").removesuffix("]")):
        try:
            return ipaddress.ip_address(form)
        except ValueError:
            continue
    return None


def client_address(request: Request, trusted: tuple[Network, ...]) -> str:
    """The client's address for per-address limits: walking back from the peer through
    `X-Forwarded-For` (right to left), the first address that is not a trusted proxy's
    (`AISLE_TRUSTED_PROXIES`: the HAProxy ingress on the node, a load balancer); entries left
    of it are the client's own word. The peer is as Serve's HTTP server (uvicorn) gives it:
    it has already stepped back over the X-Forwarded-For entries loopback proxies added."""
    peer = (request.client.host if request.client else "") or "unknown"
    chain = [e.strip() for line in request.headers.getlist("x-forwarded-for")
             for e in line.split(",")]
    known = peer
    for text in (peer, *reversed(chain)):
        address = _ip(text)
        if address is None:  # not an address: nothing left of it can be believed
            break
        known = str(address)
        if not any(address in net for net in trusted):
            return known
    return known


async def limit_shopper(request: Request) -> None:
    """Search and suggest: SEARCH requests a minute per client address (internal callers
    exempt)."""
    if is_internal_caller(request):
        return
    svc = services_of(request)
    client = client_address(request, svc.settings.trusted_proxies)
    await svc.limiter.check("search", client, svc.settings.rate_limit_search)


async def limit_events(request: Request) -> None:
    """Shoppers' events (clicks, add-to-carts): requests a minute per client address
    (internal callers exempt)."""
    if is_internal_caller(request):
        return
    svc = services_of(request)
    client = client_address(request, svc.settings.trusted_proxies)
    await svc.limiter.check("events", client, svc.settings.rate_limit_events)


async def limit_cart(request: Request) -> None:
    """The shoppers' cart API: requests a minute per client address, internal callers
    exempt (and 503 at once while PostgreSQL's breaker is open)."""
    svc = services_of(request)
    database_up(svc)
    if is_internal_caller(request):
        return
    client = client_address(request, svc.settings.trusted_proxies)
    await svc.limiter.check("cart", client, svc.settings.rate_limit_cart)


async def limit_seller(request: Request) -> None:
    """The seller API: requests a minute per API key (a hash of it: keys never reach
    Redis)."""
    if is_internal_caller(request):
        return
    svc = services_of(request)
    authorization = request.headers.get("authorization") or ""
    key = hashlib.sha256(authorization.encode()).hexdigest()[:24]
    await svc.limiter.check("seller", key, svc.settings.rate_limit_seller)


Svc = Annotated[Services, Depends(_services)]
Seller = Annotated[int, Depends(current_seller)]
Internal = Annotated[None, Depends(require_internal)]
