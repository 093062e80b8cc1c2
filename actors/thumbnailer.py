"""Thumbnails made by Ray tasks: one task per uploaded image, off the Gateway's event loop and
spread over the cluster's CPUs. The task reads the original from the store and writes the
renditions back (the bytes never pass through the Gateway)."""

from __future__ import annotations

import ray

from adapters.media_store import LocalStore, StoreConfig
from domain.images import SIZES, original_key, thumbnail_key, thumbnails


@ray.remote(num_cpus=0.25, max_retries=2)
def _make(cfg: StoreConfig, sha256: str, ext: str, sizes: tuple[int, ...]) -> list[int]:
    store = LocalStore.open(cfg)
    made = thumbnails(store.read(original_key(sha256, ext)), sizes)
    for size, data in made.items():
        store.write(thumbnail_key(sha256, size), data)
    return sorted(made)


async def make_thumbnails(cfg: StoreConfig, sha256: str, ext: str,
                          sizes: tuple[int, ...] = SIZES) -> list[int]:
    """The sizes made (every one of `sizes`), or the task's error."""
    done: list[int] = await _make.remote(cfg, sha256, ext, sizes)
    return done
