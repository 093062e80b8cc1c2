"""Seller images with the app configured for an S3 bucket (AISLE_MEDIA_S3_*): an upload over
HTTP lands in the bucket, Ray tasks make the thumbnails there, `/media/...` serves them from
it, deleting the image removes its objects. Nothing goes to the media directory.

A second Gateway (its own Serve application under /s3, on the session's cluster and database)
runs with the S3 settings, next to the session's LocalStore app; its replica gets the test's
AWS variables, as a deployment's nodes would have credentials. The S3 server is the session's
(tests/s3_server.py: moto's S3-protocol emulator, or a real endpoint)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from botocore.exceptions import ClientError
from PIL import Image

from adapters.media_store import S3Config
from adapters.s3_store import CACHE_FOREVER, S3Store
from adapters.settings import Settings
from tests.e2e.conftest import Seller
from tests.e2e.test_images_api import _files, picture
from tests.e2e.test_seller_api import body, create
from tests.s3_server import aws_env, s3_config

__all__ = ["s3_config"]  # the session's S3 server (a fixture)
PREFIX = "/s3"


@pytest.fixture(scope="module")
def s3_app(app_url: str, settings: Settings, s3_config: S3Config) -> Iterator[str]:
    """The Gateway again, with images in the bucket: its URL (app_url + /s3)."""
    from ray import serve

    from serve.app import Gateway
    from tooling.demo import wait_healthy

    s3_settings = settings.replace(
        media_dir=None, media_s3_bucket=s3_config.bucket, media_s3_prefix=s3_config.prefix,
        media_s3_endpoint_url=s3_config.endpoint_url, media_s3_region=s3_config.region,
        media_s3_addressing=s3_config.addressing, media_base_url=f"{PREFIX}/media")
    gateway = Gateway.options(  # type: ignore[attr-defined]
        num_replicas=1,
        ray_actor_options={"num_cpus": 0.5, "runtime_env": {"env_vars": aws_env()}})
    serve.run(gateway.bind(s3_settings, None), name="aisle-s3", route_prefix=PREFIX,
              blocking=False)
    try:
        wait_healthy(app_url + PREFIX, timeout_s=300)
        yield app_url + PREFIX
    finally:
        serve.delete("aisle-s3")


@pytest.fixture
async def s3_client(s3_app: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=s3_app, timeout=30) as c:
        yield c


def _objects(store: S3Store) -> set[str]:
    pages = store.client.get_paginator("list_objects_v2").paginate(
        Bucket=store.cfg.bucket, Prefix=store.cfg.prefix)
    return {o["Key"].removeprefix(store.cfg.prefix) for page in pages
            for o in page.get("Contents", [])}


async def test_upload_to_the_bucket_serve_and_delete(
        client: httpx.AsyncClient, s3_client: httpx.AsyncClient, seller: Seller,
        settings: Settings, s3_config: S3Config, category_ids: dict[str, int]) -> None:
    store = S3Store(s3_config)
    local_files = _files(settings)
    p = await create(client, seller, {**body(category_ids["Headphones"]), "images": []})
    pid, data = p["product_id"], picture((640, 480), shade=7)
    r = await s3_client.post(f"/api/v1/seller/products/{pid}/images", params={"wait": "true"},
                             headers=seller.auth,
                             files={"file": ("photo.png", data, "image/png")})
    assert r.status_code == 201, r.text
    img = r.json()
    assert img["status"] == "READY"
    sha = img["thumbnails"]["300"].split("/")[-2]
    expected = {f"originals/{sha}.png"} | {f"{sha}/{s}.jpg" for s in (150, 300, 600, 1200)}
    assert expected <= _objects(store)
    assert _files(settings) == local_files  # nothing written to the media directory

    for size, url in img["thumbnails"].items():  # /s3/media/...: served from the bucket
        assert url.startswith(f"{PREFIX}/media/")
        got = await client.get(url)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "image/jpeg"
        assert got.headers["cache-control"] == CACHE_FOREVER
        assert max(Image.open(io.BytesIO(got.content)).size) == min(int(size), 640)

    r = await s3_client.delete(f"/api/v1/seller/products/{pid}/images/{img['image_id']}",
                               headers=seller.auth)
    assert r.status_code == 200, r.text
    assert not expected & _objects(store)  # the original and 4 thumbnails
    assert (await client.get(img["thumbnails"]["300"])).status_code == 404
    with pytest.raises(ClientError):
        store.client.head_object(Bucket=store.cfg.bucket, Key=f"{store.cfg.prefix}{sha}/300.jpg")
