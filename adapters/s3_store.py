"""`S3Store`: seller images in a bucket of any S3-compatible service (AWS S3, MinIO, Cloudflare
R2, Ceph RGW, ...), behind the same `ObjectStore` Protocol as `LocalStore`.

boto3 is synchronous: the async methods run its calls in `asyncio.to_thread`; a Ray
thumbnail task calls the blocking `read`/`write` directly. A PUT is all-or-nothing, so a
reader never sees half an object. Objects are written with their image Content-Type and a
year-long immutable Cache-Control (keys are content hashes), so a CDN or the bucket itself can
serve them as they are (AISLE_MEDIA_BASE_URL).

Credentials are never part of the configuration: boto3 finds them the usual way on whichever
node runs the code (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity,
an instance or task role).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from adapters.media_store import S3Config, checked_key

if TYPE_CHECKING:
    from botocore.awsrequest import AWSRequest
    from mypy_boto3_s3 import S3Client

CACHE_FOREVER = "public, max-age=31536000, immutable"
_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_DELETE_BATCH = 1000  # the most DeleteObjects takes at once


def _content_md5(request: AWSRequest, **_: object) -> None:
    """DeleteObjects with a Content-MD5 header: boto3 >= 1.36 sends a CRC32 checksum instead,
    which older MinIO and some other S3-compatible servers refuse (MissingContentMD5)."""
    body = request.body
    if isinstance(body, bytes | bytearray):
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        request.headers["Content-MD5"] = base64.b64encode(digest).decode()


@functools.lru_cache(maxsize=8)
def _client(cfg: S3Config) -> S3Client:
    """One client per process and configuration (boto3 clients are thread-safe; a Ray worker
    reuses it task after task)."""
    compatible = cfg.endpoint_url is not None  # not AWS: only the checksums S3 requires
    client = boto3.session.Session().client(
        "s3", endpoint_url=cfg.endpoint_url, region_name=cfg.region,
        config=Config(
            s3={"addressing_style": cfg.addressing},
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=5, read_timeout=30,
            request_checksum_calculation="when_required" if compatible else "when_supported",
            response_checksum_validation="when_required" if compatible else "when_supported",
        ))
    if compatible:
        client.meta.events.register("before-sign.s3.DeleteObjects", _content_md5)
    return client


class S3Store:
    def __init__(self, cfg: S3Config) -> None:
        self.cfg = cfg
        self.client = _client(cfg)

    @property
    def config(self) -> S3Config:
        return self.cfg

    def object_key(self, key: str) -> str:
        """The key in the bucket: the prefix, then the store's key (checked)."""
        return self.cfg.prefix + checked_key(key)

    def path(self, key: str) -> None:
        """No local file: the `/media/` route answers with `get`."""
        checked_key(key)
        return None

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.cfg.bucket, Key=self.object_key(key), Body=data,
            ContentType=_TYPES.get(key.rpartition(".")[2], "application/octet-stream"),
            CacheControl=CACHE_FOREVER)

    def read(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when there is none (as LocalStore)."""
        name = self.object_key(key)
        try:
            answer = self.client.get_object(Bucket=self.cfg.bucket, Key=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise FileNotFoundError(
                    f"no object {name!r} in bucket {self.cfg.bucket!r}") from None
            raise
        body = answer["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def remove(self, keys: list[str]) -> None:
        """Deletes them, a thousand a request (a key that is not there is no error)."""
        names = list(dict.fromkeys(self.object_key(k) for k in keys))  # all checked first
        for i in range(0, len(names), _DELETE_BATCH):
            batch = names[i:i + _DELETE_BATCH]
            answer = self.client.delete_objects(
                Bucket=self.cfg.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            errors = [e for e in answer.get("Errors", []) if e.get("Code") not in _MISSING]
            if errors:
                first = errors[0]
                raise OSError(f"S3 DeleteObjects in bucket {self.cfg.bucket!r}: {len(errors)} "
                              f"of {len(batch)} keys not deleted, e.g. {first.get('Key')!r}: "
                              f"{first.get('Code')} {first.get('Message')}")

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self.write, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.read, key)

    async def delete(self, keys: list[str]) -> None:
        if keys:
            await asyncio.to_thread(self.remove, keys)
