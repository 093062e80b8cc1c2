"""Bulk catalog loading: real catalogs (esci, icecat) and synthetic ones, into PostgreSQL.

    result = await load_catalog(dsn, "esci")            # once per database; then skipped
    result = await load_catalog(dsn, "synthetic:1000000", seed=7)

Mappers and the generator are pure (pyarrow tables in, `CatalogFrames` out, deterministic
from the seed); `CatalogWriter` COPYs frames inside the caller's transaction.
"""

from __future__ import annotations

from adapters.loading.datasets import Dataset, resolve
from adapters.loading.esci import map_esci
from adapters.loading.frames import CatalogFrames, IdSource
from adapters.loading.icecat import map_icecat
from adapters.loading.loader import CatalogLoadFailed, LoadResult, load_catalog
from adapters.loading.synthetic import synthetic_chunks
from adapters.loading.writer import CatalogWriter

__all__ = [
    "CatalogFrames",
    "CatalogLoadFailed",
    "CatalogWriter",
    "Dataset",
    "IdSource",
    "LoadResult",
    "load_catalog",
    "map_esci",
    "map_icecat",
    "resolve",
    "synthetic_chunks",
]
