"""Seller image uploads over HTTP: decoded to validate (4xx naming `file`, nothing stored or
written), stored, thumbnails made by Ray tasks, shown as a new product version; the same bytes
again are the same image; deleting removes the files."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from PIL import Image

from adapters.settings import Settings
from domain.images import EICAR
from tests.e2e.conftest import Seller
from tests.e2e.test_seller_api import body, create


def picture(size: tuple[int, int] = (800, 600), shade: int = 0) -> bytes:
    img = Image.new("RGB", size)
    img.putdata([((x + shade) % 256, (y * 3) % 256, (x * y) % 256)
                 for y in range(size[1]) for x in range(size[0])])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _files(settings: Settings) -> set[Path]:
    root = (settings.media_dir or settings.data_dir / "media").expanduser().resolve()
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


async def _upload(client: httpx.AsyncClient, seller: Seller, pid: str, data: bytes,
                  wait: bool = True, **form: str) -> httpx.Response:
    return await client.post(f"/api/v1/seller/products/{pid}/images",
                             params={"wait": "true"} if wait else {}, headers=seller.auth,
                             files={"file": ("photo.png", data, "image/png")}, data=form)


async def _state(pool: asyncpg.Pool, pid: str) -> tuple[int, int, int]:
    """(product version, uploads, product images)."""
    row = await pool.fetchrow(
        """SELECT p.version, (SELECT count(*) FROM media_images m WHERE m.product_id = p.product_id)
                  AS uploads,
                  (SELECT count(*) FROM product_images i WHERE i.product_id = p.product_id)
                  AS images
           FROM products p WHERE p.product_id = $1""", int(pid))
    return (row["version"], row["uploads"], row["images"])


async def test_upload_thumbnails_show_retry_and_delete(
        client: httpx.AsyncClient, seller: Seller, pool: asyncpg.Pool, settings: Settings,
        category_ids: dict[str, int]) -> None:
    p = await create(client, seller, {**body(category_ids["Headphones"]), "images": []})
    pid, data = p["product_id"], picture()
    r = await _upload(client, seller, pid, data, alt_text="Front view")
    assert r.status_code == 201, r.text
    img = r.json()
    assert (img["status"], img["width"], img["height"], img["alt_text"]) == (
        "READY", 800, 600, "Front view")
    for size, url in img["thumbnails"].items():  # served by aisle, cached for good
        got = await client.get(url)
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
        assert "immutable" in got.headers["cache-control"]
        assert max(Image.open(io.BytesIO(got.content)).size) == min(int(size), 800)
    # the product has it: a new version, through the outbox to pages and search
    product = (await client.get(f"/api/v1/seller/products/{pid}", headers=seller.auth)).json()
    assert product["version"] == 2
    assert [i["url"] for i in product["images"]] == [img["url"]] == [img["thumbnails"]["600"]]
    events = [r["event_type"] for r in await pool.fetch(
        "SELECT event_type FROM outbox WHERE aggregate_id = $1 ORDER BY event_id", int(pid))]
    assert events == ["product.created", "product.updated"]
    page = (await client.get(f"/api/v1/products/{pid}")).json()
    assert page["images"] == [img["url"]]

    # the same bytes again (a retry): the same image, nothing twice
    again = await _upload(client, seller, pid, data, wait=False)
    assert again.status_code == 201 and again.json()["image_id"] == img["image_id"]
    assert await _state(pool, pid) == (2, 1, 1)
    listed = (await client.get(f"/api/v1/seller/products/{pid}/images",
                               headers=seller.auth)).json()
    assert [i["image_id"] for i in listed["images"]] == [img["image_id"]]

    # delete: gone from the product (a new version) and from storage
    before = _files(settings)
    r = await client.delete(f"/api/v1/seller/products/{pid}/images/{img['image_id']}",
                            headers=seller.auth)
    assert r.status_code == 200 and r.json()["version"] == 3, r.text
    assert await _state(pool, pid) == (3, 0, 0)
    assert len(before - _files(settings)) == 5  # the original and 4 thumbnails
    assert (await client.get(img["thumbnails"]["300"])).status_code == 404


async def test_an_upload_deleted_while_processing_is_never_shown_and_a_removed_one_comes_back(
        client: httpx.AsyncClient, seller: Seller, pool: asyncpg.Pool, settings: Settings,
        category_ids: dict[str, int]) -> None:
    """The same photo on two listings: deleted from the second while its thumbnails are
    made, it never shows there (and the first keeps its files). Removed from a product by a
    write, the same bytes uploaded again show it again, as the new upload describes it."""
    payload = {**body(category_ids["Headphones"]), "images": []}
    first = await create(client, seller, payload)
    second = await create(client, seller, {**body(category_ids["Headphones"]), "images": []})
    data = picture(shade=29)
    shown = await _upload(client, seller, first["product_id"], data)
    assert shown.status_code == 201, shown.text
    r = await _upload(client, seller, second["product_id"], data, wait=False)
    assert r.status_code == 202 and r.json()["status"] == "PROCESSING", r.text
    r = await client.delete(f"/api/v1/seller/products/{second['product_id']}/images/"
                            f"{r.json()['image_id']}", headers=seller.auth)
    assert r.status_code == 200 and r.json()["version"] == 1, r.text  # it showed nothing
    for _ in range(40):  # its thumbnails are made meanwhile (about a second)
        assert await _state(pool, second["product_id"]) == (1, 0, 0)
        await asyncio.sleep(0.25)
    page = (await client.get(f"/api/v1/products/{first['product_id']}")).json()
    assert page["images"] == [shown.json()["url"]]
    assert (await client.get(shown.json()["url"])).status_code == 200

    # the first product written without it, then the same bytes again
    pid = first["product_id"]
    r = await client.put(f"/api/v1/seller/products/{pid}", headers=seller.auth,
                         json={**payload, "version": 2})
    assert r.status_code == 200 and r.json()["images"] == [], r.text
    again = await _upload(client, seller, pid, data, alt_text="Back view")
    assert again.status_code == 201, again.text
    assert (again.json()["image_id"], again.json()["alt_text"]) == (
        shown.json()["image_id"], "Back view")
    product = (await client.get(f"/api/v1/seller/products/{pid}", headers=seller.auth)).json()
    assert [(i["url"], i["alt_text"]) for i in product["images"]] == [
        (shown.json()["url"], "Back view")]
    assert await _state(pool, pid) == (4, 1, 1)
    page = (await client.get(f"/api/v1/products/{pid}")).json()
    assert page["images"] == [shown.json()["url"]]


@pytest.mark.parametrize(("data", "form", "field", "why"), [
    (b"just some text", {}, "file", "is not an image"),
    (picture() + EICAR, {}, "file", "virus scan"),
    (picture((30, 30)), {}, "file", "at least"),
    (picture()[:2000], {}, "file", "does not decode"),
    (picture(), {"variant_sku": "NO-SUCH-SKU"}, "variant_sku", "no variant"),
    (picture(), {"position": "-1"}, "position", ""),
    (picture(), {"alt_text": "front\x00view"}, "alt_text", "control character U+0000"),
    (picture(), {"alt_text": "front \u202eweiv"}, "alt_text", "control character U+202E"),
    (picture(), {"variant_sku": "WH5\x00BLK"}, "variant_sku", "SKU"),
    (picture(), {"alt_text": "\u0344" * 300}, "alt_text", "at most 300"),  # 600 once NFC
])
async def test_bad_uploads_are_refused_whole(
        client: httpx.AsyncClient, seller: Seller, pool: asyncpg.Pool, settings: Settings,
        category_ids: dict[str, int], data: bytes, form: dict[str, str], field: str,
        why: str) -> None:
    p = await create(client, seller, {**body(category_ids["Headphones"]), "images": []})
    files = _files(settings)
    r = await _upload(client, seller, p["product_id"], data, **form)
    assert r.status_code == 422, r.text
    fields: dict[str, Any] = r.json()["error"]["fields"]
    assert any(field in k and why in v for k, v in fields.items()), r.text
    assert await _state(pool, p["product_id"]) == (1, 0, 0)  # no row, no version
    assert _files(settings) == files  # no file


async def test_uploads_need_the_products_seller(
        client: httpx.AsyncClient, seller: Seller, other_seller: Seller,
        category_ids: dict[str, int]) -> None:
    p = await create(client, seller, {**body(category_ids["Headphones"]), "images": []})
    r = await _upload(client, other_seller, p["product_id"], picture())
    assert r.status_code == 403, r.text
    r = await client.post(f"/api/v1/seller/products/{p['product_id']}/images",
                          headers=seller.auth, data={"alt_text": "no file"})
    assert r.status_code == 422 and "file" in str(r.json()["error"]["fields"]), r.text


async def test_uploads_stop_at_the_products_image_limit(
        client: httpx.AsyncClient, seller: Seller, pool: asyncpg.Pool, settings: Settings,
        category_ids: dict[str, int]) -> None:
    """A product with as many images as a product may have takes no upload (422 naming
    `file`, nothing stored or written), as the product API refuses one more."""
    images = [{"url": f"https://img.example.com/{i}.jpg"} for i in range(settings.max_images)]
    p = await create(client, seller, {**body(category_ids["Headphones"]), "images": images})
    files = _files(settings)
    r = await _upload(client, seller, p["product_id"], picture(shade=7))
    assert r.status_code == 422, r.text
    assert f"at most {settings.max_images}" in r.json()["error"]["fields"]["file"], r.text
    assert await _state(pool, p["product_id"]) == (1, 0, settings.max_images)
    assert _files(settings) == files


async def test_uploaded_images_survive_product_writes_history_and_restore(
        client: httpx.AsyncClient, seller: Seller, pool: asyncpg.Pool,
        category_ids: dict[str, int]) -> None:
    """An upload's url is a path on the shop (`/media/...` unless a CDN serves them): a PUT
    may keep it (it names an image uploaded to this product), so a seller can change the
    title without losing the photo; the version history shows it and a restore brings it
    back. A path no upload of this product has is refused naming the field, nothing written."""
    payload = {**body(category_ids["Headphones"]), "images": []}
    p = await create(client, seller, payload)
    pid, base = p["product_id"], f"/api/v1/seller/products/{p['product_id']}"
    r = await _upload(client, seller, pid, picture(shade=11), alt_text="Front view")
    assert r.status_code == 201, r.text
    mine = r.json()["url"]
    assert mine.startswith("/media/")
    cdn = "https://img.example.com/side.jpg"
    kept = [{"url": mine, "alt_text": "Front view"}, {"url": cdn}]
    r = await client.put(base, json={**payload, "title": "Renamed", "images": kept, "version": 2},
                         headers=seller.auth)
    assert r.status_code == 200, r.text
    assert [i["url"] for i in r.json()["images"]] == [mine, cdn]
    assert r.json()["version"] == 3
    page = (await client.get(f"/api/v1/products/{pid}")).json()
    assert (page["title"], page["images"]) == ("Renamed", [mine, cdn])
    # history reads the version as a PUT body, and restoring it brings the photo back
    v3 = await client.get(f"{base}/versions/3", headers=seller.auth)
    assert v3.status_code == 200, v3.text
    assert [i["url"] for i in v3.json()["product"]["images"]] == [mine, cdn]
    r = await client.put(base, json={**payload, "images": [], "version": 3}, headers=seller.auth)
    assert r.status_code == 200 and r.json()["images"] == [], r.text
    r = await client.post(f"{base}/versions/3/restore", headers={**seller.auth, "If-Match": "4"})
    assert r.status_code == 200, r.text
    assert [i["url"] for i in r.json()["images"]] == [mine, cdn]
    assert await _state(pool, pid) == (5, 1, 2)

    # a path that is no upload of this product: refused whole, naming the field
    elsewhere = await create(client, seller, {**body(category_ids["Headphones"]), "images": []})
    foreign = [{"url": cdn}, {"url": mine}]
    for target, who, images, version in (
            (base, seller, [{"url": cdn}, {"url": "/media/" + "0" * 64 + "/600.jpg"}], 5),
            (f"/api/v1/seller/products/{elsewhere['product_id']}", seller, foreign, 1),
            (f"/api/v1/seller/products/{elsewhere['product_id']}", seller,
             [{"url": cdn}, {"url": "//evil.example.com/x.jpg"}], 1),
            (f"/api/v1/seller/products/{elsewhere['product_id']}", seller,
             [{"url": cdn}, {"url": "/media/a b.jpg"}], 1)):
        r = await client.put(target, json={**payload, "variants": [
            {**payload["variants"][0], "sku": f"OTHER-{version}-{len(images[1]['url'])}"}],
            "images": images, "version": version}, headers=who.auth)
        assert r.status_code == 422, r.text
        fields = r.json()["error"]["fields"]
        assert "images.1.url" in fields and "images.0.url" not in fields, r.text
    r = await client.post("/api/v1/seller/products", headers=seller.auth, json={
        **body(category_ids["Headphones"]), "images": [{"url": mine}]})
    assert r.status_code == 422 and "images.0.url" in r.json()["error"]["fields"], r.text
    # (it names no product id: the one it would have had is never made)
    assert "create the product first" in r.json()["error"]["fields"]["images.0.url"]
    assert await _state(pool, pid) == (5, 1, 2)
    assert await _state(pool, elsewhere["product_id"]) == (1, 0, 0)

    # once the upload is deleted, its path is refused: a restore of a version that showed it
    # says why (422 naming the image), and nothing is written
    image_id = (await client.get(f"{base}/images", headers=seller.auth)).json()["images"][0]
    r = await client.delete(f"{base}/images/{image_id['image_id']}", headers=seller.auth)
    assert r.status_code == 200, r.text
    version = r.json()["version"]
    r = await client.post(f"{base}/versions/3/restore",
                          headers={**seller.auth, "If-Match": str(version)})
    assert r.status_code == 422 and "images.0.url" in r.json()["error"]["fields"], r.text
    assert await _state(pool, pid) == (version, 0, 1)
