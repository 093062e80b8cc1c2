"""Rate limits shared through Redis: search and the cart API per client address, the seller
API per key;
429 with Retry-After and RateLimit-* headers and the usual JSON error; the internal token is
exempt; with Redis down each replica still limits on its own."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.settings import Settings
from serve.api import make_api
from serve.app import build_services
from serve.services import Services
from tests.conftest import INTERNAL_TOKEN
from tests.e2e.conftest import Seller

LIMIT = 4


NOW = time.time()  # one minute window for the whole test: none ends in the middle of it


async def gateway(settings: Settings) -> Services:
    # another Gateway replica on the session's database and Redis, with small limits
    services = await build_services(settings.replace(rate_limit_search=LIMIT,
                                                     rate_limit_seller=LIMIT,
                                                     rate_limit_cart=LIMIT), None)
    services.limiter.clock = lambda: NOW
    # shared counting is under test, not the 50-ms fallback (a loaded machine can take longer
    # to connect, and each replica then counts alone: see the Redis-down test below)
    services.limiter.timeout_s = 5.0
    return services


def client(services: Services, address: str) -> httpx.AsyncClient:
    api = make_api()
    api.state.services = services
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api, client=(address, 5000)),
                             base_url="http://gateway", timeout=30)


async def gateway_with(like: Services, **limits: int) -> Services:
    """A replica like `like` with other limits (a window of its own: its clock)."""
    services = await build_services(like.settings.replace(**limits), None)
    services.limiter.clock = lambda: NOW + 120
    services.limiter.timeout_s = 5.0
    return services


@pytest.fixture
async def two_replicas(app_url: str, settings: Settings) -> AsyncIterator[list[Services]]:
    replicas = [await gateway(settings), await gateway(settings)]
    yield replicas
    for s in replicas:
        await s.pages.close()
        await s.pool.close()


async def test_search_is_limited_per_address_across_replicas(
        two_replicas: list[Services]) -> None:
    address = f"10.9.{secrets.randbits(8)}.{secrets.randbits(8)}"  # a window of its own
    a, b = (client(s, address) for s in two_replicas)
    codes = [(await (a if i % 2 else b).get("/api/v1/products/search", params={"q": "x"}))
             .status_code for i in range(LIMIT)]
    assert codes == [200] * LIMIT  # shared: 4 in all, over both replicas
    over = await a.get("/api/v1/products/suggest", params={"q": "x"})
    assert over.status_code == 429, over.text
    assert over.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.headers["RateLimit-Limit"] == str(LIMIT)
    assert over.headers["RateLimit-Remaining"] == "0"
    assert over.headers["RateLimit-Reset"] == over.headers["Retry-After"]
    assert (await b.get("/api/v1/products/search", params={"q": "x"})).status_code == 429
    # what each replica exports as ray_aisle_rate_limited_total{scope="search"}
    assert sum(s.limiter.refused.get("search", 0) for s in two_replicas) == 2
    internal = await a.get("/api/v1/products/search", params={"q": "x"},
                           headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"})
    assert internal.status_code == 200  # the internal token is exempt
    other = client(two_replicas[0], address + "1")
    assert (await other.get("/api/v1/products/search")).status_code == 200


async def test_the_cart_api_is_limited_per_address(two_replicas: list[Services]) -> None:
    address = f"10.7.{secrets.randbits(8)}.{secrets.randbits(8)}"
    a, b = (client(s, address) for s in two_replicas)
    made = await a.post("/api/v1/cart")
    assert made.status_code == 201, made.text
    token = {"X-Cart-Token": made.json()["cart_token"]}
    codes = [(await (b if i % 2 else a).get("/api/v1/cart", headers=token)).status_code
             for i in range(LIMIT)]
    assert codes == [200] * (LIMIT - 1) + [429]  # the cart made counted too, over both
    assert (await a.post("/api/v1/cart/checkout", headers=token)).status_code == 429
    assert (await client(two_replicas[1], address + "9").get(
        "/api/v1/cart", headers=token)).status_code == 200  # another address
    internal = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}  # exempt, as the docs say
    assert (await a.get("/api/v1/cart", headers=token | internal)).status_code == 200
    # shoppers' events likewise (their limit is per address too)
    events = await gateway_with(two_replicas[0], rate_limit_events=1)
    try:
        c = client(events, address)
        body = {"type": "click", "search_id": secrets.token_hex(8), "product_id": "7"}
        assert (await c.post("/api/v1/events", json=body)).status_code == 202
        assert (await c.post("/api/v1/events", json=body)).status_code == 429
        assert (await c.post("/api/v1/events", json=body, headers=internal)).status_code == 202
    finally:
        await events.pages.close()
        await events.pool.close()


async def test_the_seller_api_is_limited_per_key(two_replicas: list[Services],
                                                 seller: Seller,
                                                 other_seller: Seller) -> None:
    c = client(two_replicas[0], "10.8.0.1")
    codes = [(await c.get("/api/v1/seller/products", headers=seller.auth)).status_code
             for _ in range(LIMIT + 1)]
    assert codes == [200] * LIMIT + [429]
    assert (await c.get("/api/v1/seller/products",
                        headers=other_seller.auth)).status_code == 200


async def test_with_redis_down_each_replica_still_limits(app_url: str,
                                                        settings: Settings) -> None:
    services = await gateway(settings.replace(redis_url="redis://127.0.0.1:1/0"))
    try:
        c = client(services, "10.7.0.1")
        codes = [(await c.get("/api/v1/products/suggest", params={"q": "x"})).status_code
                 for _ in range(LIMIT + 1)]
        assert codes == [200] * LIMIT + [429]
    finally:
        await services.pages.close()
        await services.pool.close()
