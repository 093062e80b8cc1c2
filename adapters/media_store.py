"""Object storage for seller images: originals and thumbnails, by content-addressed keys.

`LocalStore` (the default) keeps them under a directory, written atomically (a temporary file
renamed into place: a reader never sees half a file); aisle serves them itself under
`/media/`. A deployment with several nodes points AISLE_MEDIA_DIR at shared storage, or puts
an S3-compatible store behind the same Protocol (not built yet) and a CDN at
AISLE_MEDIA_BASE_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Protocol

_KEY_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789./_-")


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, keys: list[str]) -> None: ...

    def path(self, key: str) -> Path | None:
        """A local file to serve the object from (None: the store serves it itself)."""


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    """What a Ray task needs to open the same store (it pickles)."""

    root: str


def _checked(key: str) -> str:
    if not key or key.startswith("/") or ".." in key or set(key) - _KEY_OK:
        raise ValueError(f"bad object key {key!r}")
    return key


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def config(self) -> StoreConfig:
        return StoreConfig(str(self.root))

    @classmethod
    def open(cls, cfg: StoreConfig) -> LocalStore:
        return cls(Path(cfg.root))

    def path(self, key: str) -> Path:
        return self.root / _checked(key)

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
