"""/health tells each dependency as it is: with Redis down the service works (caches read
through, stock from the partitions), so it says `degraded` with 200 (it used to say 503)."""

from __future__ import annotations

import httpx

from adapters.settings import Settings
from serve.api import make_api
from serve.app import build_services


async def test_without_redis_the_service_is_degraded_not_down(app_url: str,
                                                              settings: Settings) -> None:
    # a second Gateway's services, as a replica whose Redis is unreachable would build them
    services = await build_services(settings.replace(redis_url="redis://127.0.0.1:1/0"), None)
    api = make_api()
    api.state.services = services
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                     base_url="http://gateway", timeout=30) as client:
            r = await client.get("/health")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["status"] == "degraded"
            assert body["checks"]["redis"].startswith("down")
            assert {k: v for k, v in body["checks"].items() if k != "redis"} == {
                "postgres": "ok", "ray": "ok", "id_lease": "ok", "search_index": "ok"}
            found = await client.get("/api/v1/products/search", params={"q": "x"})
            assert found.status_code == 200, found.text  # and the service does work
    finally:
        await services.pages.close()
        await services.pool.close()
