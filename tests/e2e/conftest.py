"""End-to-end fixtures: HTTP through the Serve app, sellers and categories made in SQL."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from domain.sellers import hash_api_key, new_api_key


@dataclass
class Seller:
    seller_id: int
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="session")
async def client(app_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as c:
        yield c


async def make_seller(pool: asyncpg.Pool, name: str = "Test Seller") -> Seller:
    key = new_api_key()
    seller_id = secrets.randbits(62)
    await pool.execute(
        "INSERT INTO sellers (seller_id, name, api_key_hash, rating) VALUES ($1, $2, $3, 4.5)",
        seller_id,
        name,
        hash_api_key(key),
    )
    return Seller(seller_id, key)


@pytest.fixture
async def seller(pool: asyncpg.Pool) -> Seller:
    return await make_seller(pool)


@pytest.fixture
async def other_seller(pool: asyncpg.Pool) -> Seller:
    return await make_seller(pool, "Other Seller")


@pytest.fixture(scope="session")
async def category_ids(pool: asyncpg.Pool) -> dict[str, int]:
    """Electronics > Audio > Headphones, made once per session."""
    ids: dict[str, int] = {}
    parent = None
    path: list[str] = []
    for name in ("Electronics", "Audio", "Headphones"):
        path.append(name)
        ids[name] = await pool.fetchval(
            """INSERT INTO categories (parent_id, name, path, depth) VALUES ($1, $2, $3, $4)
               ON CONFLICT (parent_id, name) DO UPDATE SET name = EXCLUDED.name
               RETURNING category_id""",
            parent,
            name,
            path,
            len(path) - 1,
        )
        parent = ids[name]
    return ids


@pytest.fixture
async def unrelated(client: httpx.AsyncClient, seller: Seller,
                    category_ids: dict[str, int]) -> str:
    """Three searchable products sharing a made-up word of their own (so that the catalog
    holds products besides a test's, e.g. as semantic candidates); the word."""
    word = "ot" + secrets.token_hex(3)
    for i in range(3):
        r = await client.post("/api/v1/seller/products", headers=seller.auth, json={
            "title": f"{word} reading lamp {i}", "category_id": category_ids["Headphones"],
            "variants": [{"sku": f"S-{word}-{i}", "price_cents": 2_000 + i}]})
        assert r.status_code == 201, r.text
    await until_searchable(client, word, 3)
    return word


async def until_searchable(client: httpx.AsyncClient, q: str, n: int) -> None:
    """Waits (up to 30 s) until a search for `q` finds at least `n` products."""
    deadline = time.monotonic() + 30
    while (await client.get("/api/v1/products/search", params={"q": q})).json()["total"] < n:
        assert time.monotonic() < deadline, "products never became searchable"
        await asyncio.sleep(0.1)
