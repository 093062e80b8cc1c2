"""Object storage for seller images: originals and thumbnails, by content-addressed keys.

Two stores behind one Protocol, chosen by configuration alone (`open_store`):

- `LocalStore` (the default) keeps them under a directory, written atomically (a temporary
  file renamed into place: a reader never sees half a file); aisle serves them itself under
  `/media/` from the file. With several nodes, AISLE_MEDIA_DIR must be shared storage.
- `S3Store` (adapters/s3_store.py; on when AISLE_MEDIA_S3_BUCKET is set) keeps them in a
  bucket of any S3-compatible service (AWS, MinIO, R2, ...). A PUT is all-or-nothing, so
  writes are atomic there too. aisle's `/media/` route then answers with the object's bytes;
  a CDN (or the bucket itself) at AISLE_MEDIA_BASE_URL takes that traffic off the Gateways.

Keys are checked the same way for both: relative, no `..`, a small alphabet.
A Ray task reopens the same store from its `StoreConfig` (a picklable dataclass: no client,
no credentials; an S3 task finds its credentials where boto3 does, on the node it runs on).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from adapters.settings import Addressing, Settings

if TYPE_CHECKING:
    from adapters.s3_store import S3Store

_KEY_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789./_-")


@dataclasses.dataclass(frozen=True)
class LocalConfig:
    """A LocalStore: its directory (absolute)."""

    root: str


@dataclasses.dataclass(frozen=True)
class S3Config:
    """An S3Store: the bucket, a key prefix ("" or ending in "/"), and where the service is
    (`endpoint_url` None: AWS itself, in `region`). Credentials are never part of it."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    addressing: Addressing = "auto"


StoreConfig = LocalConfig | S3Config  # what a Ray task needs to open the same store (pickles)


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError when there is none."""

    async def delete(self, keys: list[str]) -> None:
        """Removes them (a key that is not there is no error)."""

    def path(self, key: str) -> Path | None:
        """A local file to serve the object from (None: the store serves it itself)."""

    @property
    def config(self) -> StoreConfig: ...


def checked_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in key or set(key) - _KEY_OK:
        raise ValueError(f"bad object key {key!r}")
    return key


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def config(self) -> LocalConfig:
        return LocalConfig(str(self.root))

    @classmethod
    def open(cls, cfg: LocalConfig) -> LocalStore:
        return cls(Path(cfg.root))

    def path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def write(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)  # atomic: whole file or none
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def remove(self, keys: list[str]) -> None:
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                self.path(key).unlink()

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self.write, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self.read, key)

    async def delete(self, keys: list[str]) -> None:
        await asyncio.to_thread(self.remove, keys)


def open_config(cfg: StoreConfig) -> LocalStore | S3Store:
    """The store a config describes (in a Ray task: the one the Gateway uses). Both have the
    blocking `read`/`write`/`remove` a task calls, besides the Protocol's async methods."""
    if isinstance(cfg, S3Config):
        from adapters.s3_store import S3Store  # boto3 is imported only when S3 is used

        return S3Store(cfg)
    return LocalStore.open(cfg)


def store_config(settings: Settings) -> StoreConfig:
    """The store the settings choose: S3 when AISLE_MEDIA_S3_BUCKET is set, else the directory
    AISLE_MEDIA_DIR (default <data dir>/media), made absolute."""
    if settings.media_s3_bucket is not None:
        return S3Config(bucket=settings.media_s3_bucket, prefix=settings.media_s3_prefix,
                        endpoint_url=settings.media_s3_endpoint_url,
                        region=settings.media_s3_region,
                        addressing=settings.media_s3_addressing)
    root = settings.media_dir or settings.data_dir / "media"
    return LocalConfig(str(Path(root).expanduser().resolve()))


def open_store(settings: Settings) -> LocalStore | S3Store:
    """The Gateway's image store: which one is configuration only."""
    return open_config(store_config(settings))
