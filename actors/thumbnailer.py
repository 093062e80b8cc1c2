"""Thumbnails made by Ray tasks: one task per uploaded image, off the Gateway's event loop and
spread over the cluster's CPUs. The task reads the original from the store and writes the
renditions back (the bytes never pass through the Gateway). The store is whichever the
Gateway uses (a directory, or an S3 bucket), reopened from its picklable config."""

from __future__ import annotations

import ray

from adapters.media_store import StoreConfig, open_config
from domain.images import SIZES, original_key, thumbnail_key, thumbnails


def render(cfg: StoreConfig, sha256: str, ext: str, sizes: tuple[int, ...]) -> list[int]:
    """What one task does: read the original, write its thumbnails (also run in-process by
    scripts/bench_images as the baseline)."""
    store = open_config(cfg)
    made = thumbnails(store.read(original_key(sha256, ext)), sizes)
    for size, data in made.items():
        store.write(thumbnail_key(sha256, size), data)
    return sorted(made)


_make = ray.remote(num_cpus=0.5, max_retries=2)(render)


async def make_thumbnails(cfg: StoreConfig, sha256: str, ext: str,
                          sizes: tuple[int, ...] = SIZES) -> list[int]:
    """The sizes made (every one of `sizes`), or the task's error."""
    done: list[int] = await _make.remote(cfg, sha256, ext, sizes)
    return done
