"""BodyGuard on a bare ASGI app: size limits, UTF-8, replayed bodies."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from serve import _errors
from serve._errors import BodyGuard


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    msg = await receive()
    body = msg.get("body", b"")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=BodyGuard(echo, limit=64)),
                             base_url="http://t")


async def test_small_utf8_bodies_pass_unchanged(client: httpx.AsyncClient) -> None:
    r = await client.post("/", content="café".encode())
    assert r.status_code == 200 and r.content == "café".encode()


async def test_configured_limit_gives_413(client: httpx.AsyncClient) -> None:
    r = await client.post("/", content=b"x" * 65)
    assert r.status_code == 413
    assert json.loads(r.content)["error"]["code"] == "payload_too_large"


async def test_invalid_utf8_gives_400_with_the_offset(client: httpx.AsyncClient) -> None:
    r = await client.put("/", content=b'{"a": "\xff"}')
    assert r.status_code == 400
    err = json.loads(r.content)["error"]
    assert err["code"] == "invalid_encoding" and "byte 7" in err["message"]


async def test_reads_are_not_buffered(client: httpx.AsyncClient) -> None:
    assert (await client.get("/")).status_code == 200


async def test_the_default_limit_is_a_mebibyte() -> None:
    guarded = httpx.AsyncClient(transport=httpx.ASGITransport(app=BodyGuard(echo)),
                                base_url="http://t")
    assert (await guarded.post("/", content=b"x" * _errors.DEFAULT_MAX_BODY)).status_code == 200
    assert (await guarded.post("/", content=b"x" * (_errors.DEFAULT_MAX_BODY + 1))
            ).status_code == 413


async def test_a_rankers_registration_with_the_internal_token_may_be_larger() -> None:
    """A model of a few hundred trees is over a megabyte of base64: its registration (POST
    /api/v1/internal/rankers with the internal token) may be up to MODEL_BODY_BYTES; without
    the token, elsewhere or otherwise, the usual limit."""
    guarded = httpx.AsyncClient(transport=httpx.ASGITransport(
        app=BodyGuard(echo, limit=64, internal_token="t0ken")), base_url="http://t")
    big = b"x" * (3 << 20)
    token = {"Authorization": "Bearer t0ken"}
    for auth in ("Bearer t0ken", "bearer  t0ken "):  # as the route reads it
        r = await guarded.post("/api/v1/internal/rankers", content=big,
                               headers={"Authorization": auth})
        assert r.status_code == 200 and len(r.content) == len(big)
    for method, path, headers in (
            ("POST", "/api/v1/internal/rankers", {}),
            ("POST", "/api/v1/internal/rankers", {"Authorization": "Bearer t0kem"}),
            ("PUT", "/api/v1/internal/rankers/lgbm_1/metrics", token),
            ("POST", "/api/v1/seller/products", token)):
        r = await guarded.request(method, path, content=big, headers=headers)
        assert r.status_code == 413, (method, path, headers)
    too_big = b"x" * (_errors.MODEL_BODY_BYTES + 1)
    r = await guarded.post("/api/v1/internal/rankers", content=too_big, headers=token)
    assert r.status_code == 413
