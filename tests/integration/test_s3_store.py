"""S3Store against an S3 server over real HTTP: the same boto3 requests a deployment makes.

By default the server (tests/s3_server.py) is moto's standalone server
(`moto.server.ThreadedMotoServer`, from `moto[server]` in the test extras), started on a free
local port for the session. It is an *emulator* of the S3 HTTP protocol, not S3 itself: it
checks the requests' shape and answers as S3 does, but does not demand, e.g., the Content-MD5
that older MinIO versions want on DeleteObjects (the test checks it is sent).

The same tests run against any real S3-compatible endpoint (AWS S3, MinIO, R2, ...) when
AISLE_TEST_S3_BUCKET names an existing bucket there; AISLE_TEST_S3_ENDPOINT_URL (unset: AWS
itself) and AISLE_TEST_S3_REGION say where, credentials come from the usual AWS variables or
profile. Each session then works under a fresh key prefix (`aisle-test-<random>/`) and
removes what it wrote.

The LocalStore runs through the same contract tests, so the two stores behave alike where the
Gateway relies on it (a missing key is FileNotFoundError, deleting a missing key is no error).
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from botocore.exceptions import ClientError
from PIL import Image

import adapters.s3_store
from actors.thumbnailer import render
from adapters.media_store import LocalStore, S3Config
from adapters.s3_store import CACHE_FOREVER, S3Store
from domain.images import SIZES, ImageLimits, inspect, original_key, thumbnail_key
from tests.s3_server import aws_env, empty, s3_config

__all__ = ["s3_config"]  # the session's S3 server (a fixture)

SHA = "cd" * 32


@pytest.fixture
def s3(s3_config: S3Config) -> Iterator[S3Store]:
    store = S3Store(s3_config)
    yield store
    empty(store)


@pytest.fixture(params=["s3", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> LocalStore | S3Store:
    if request.param == "local":
        return LocalStore(tmp_path)
    found: S3Store = request.getfixturevalue("s3")
    return found


def picture(size: tuple[int, int] = (640, 480)) -> bytes:
    img = Image.new("RGB", size)
    img.putdata([((x * 7) % 256, (y * 5) % 256, (x + y) % 256)
                 for y in range(size[1]) for x in range(size[0])])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


async def test_put_get_overwrite_delete(store: LocalStore | S3Store) -> None:
    key, other = f"{SHA}/300.jpg", f"originals/{SHA}.png"
    await store.put(key, b"first")
    await store.put(other, b"original")
    assert await store.get(key) == b"first"
    await store.put(key, b"second, longer")  # overwritten whole
    assert await store.get(key) == b"second, longer"
    await store.delete([key, f"{SHA}/1200.jpg"])  # a key that is not there: no error
    with pytest.raises(FileNotFoundError):
        await store.get(key)
    assert await store.get(other) == b"original"  # only what was named
    await store.delete([])
    await store.delete([other, other])
    with pytest.raises(FileNotFoundError):
        await store.get(other)


async def test_objects_carry_their_type_and_cache_headers_under_the_prefix(s3: S3Store) -> None:
    """What a CDN or the bucket itself serves from (AISLE_MEDIA_BASE_URL)."""
    await s3.put(f"{SHA}/150.jpg", b"jpeg bytes")
    await s3.put(f"originals/{SHA}.webp", b"webp bytes")
    head = s3.client.head_object(Bucket=s3.cfg.bucket, Key=f"{s3.cfg.prefix}{SHA}/150.jpg")
    assert (head["ContentType"], head["CacheControl"], head["ContentLength"]) == (
        "image/jpeg", CACHE_FOREVER, 10)
    head = s3.client.head_object(Bucket=s3.cfg.bucket,
                                 Key=f"{s3.cfg.prefix}originals/{SHA}.webp")
    assert head["ContentType"] == "image/webp"


async def test_delete_goes_in_batches_with_a_content_md5(
        s3: S3Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapters.s3_store, "_DELETE_BATCH", 2)
    keys = [f"{SHA}/{n}.jpg" for n in (150, 300, 600, 1200, 2000)]
    for k in keys:
        await s3.put(k, k.encode())
    sent: list[str | None] = []

    def seen(request: object, **_: object) -> None:
        sent.append(getattr(request, "headers", {}).get("Content-MD5"))

    s3.client.meta.events.register("before-send.s3.DeleteObjects", seen)
    try:
        await s3.delete(keys)
    finally:
        s3.client.meta.events.unregister("before-send.s3.DeleteObjects", seen)
    assert len(sent) == 3  # 2 + 2 + 1
    if s3.cfg.endpoint_url is not None:  # S3-compatible: every batch has one
        assert all(sent), sent
    for k in keys:
        with pytest.raises(FileNotFoundError):
            await s3.get(k)


async def test_a_missing_bucket_is_not_a_missing_key(s3_config: S3Config) -> None:
    """A misconfigured bucket must not look like a 404 for one image."""
    wrong = S3Store(S3Config(f"no-such-bucket-{secrets.token_hex(4)}", prefix=s3_config.prefix,
                             endpoint_url=s3_config.endpoint_url, region=s3_config.region,
                             addressing=s3_config.addressing))
    with pytest.raises(ClientError) as err:  # NoSuchBucket (AccessDenied on AWS, maybe)
        await wrong.get(f"{SHA}/300.jpg")
    assert err.value.response["Error"]["Code"] not in ("NoSuchKey", "404")


def _longest_sides(store: LocalStore | S3Store, sha: str) -> dict[int, int]:
    return {s: max(Image.open(io.BytesIO(store.read(thumbnail_key(sha, s)))).size)
            for s in SIZES}


async def test_thumbnails_render_from_and_into_the_bucket(s3: S3Store) -> None:
    """What the Ray task runs (actors/thumbnailer.render), given the S3 store's config."""
    data = picture()
    facts = inspect(data, ImageLimits())
    await s3.put(original_key(facts.sha256, facts.ext), data)
    assert render(s3.config, facts.sha256, facts.ext, SIZES) == sorted(SIZES)
    assert _longest_sides(s3, facts.sha256) == {150: 150, 300: 300, 600: 600, 1200: 640}


async def test_thumbnails_by_a_ray_task_on_the_bucket(s3: S3Store, ray_cluster: None) -> None:
    """The Gateway's path: make_thumbnails' remote function, the config pickled to a worker
    that opens its own client. The worker gets the test's AWS variables (a deployment gives
    its nodes credentials: environment, profile or role)."""
    from actors.thumbnailer import _make

    data = picture((400, 300))
    facts = inspect(data, ImageLimits())
    await s3.put(original_key(facts.sha256, facts.ext), data)
    done = await _make.options(runtime_env={"env_vars": aws_env()}).remote(
        s3.config, facts.sha256, facts.ext, (150, 300))
    assert done == [150, 300]
    thumb = Image.open(io.BytesIO(await s3.get(thumbnail_key(facts.sha256, 300))))
    assert (thumb.format, thumb.size) == ("JPEG", (300, 225))


async def test_the_media_route_serves_from_the_bucket(s3: S3Store) -> None:
    """/media/{sha}/{size}.jpg with an S3 store: the object's bytes (no file to send), with
    the same immutable cache header; a missing one is a 404."""
    from serve.api import make_api

    api = make_api()
    api.state.services = SimpleNamespace(media=SimpleNamespace(store=s3))
    await s3.put(f"{SHA}/300.jpg", b"\xff\xd8 a jpeg")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api),
                                 base_url="http://aisle") as client:
        r = await client.get(f"/media/{SHA}/300.jpg")
        assert r.status_code == 200, r.text
        assert r.content == b"\xff\xd8 a jpeg"
        assert r.headers["content-type"] == "image/jpeg"
        assert r.headers["cache-control"] == CACHE_FOREVER
        r = await client.get(f"/media/{SHA}/600.jpg")
        assert r.status_code == 404 and r.json()["error"]["message"] == "no such image"
