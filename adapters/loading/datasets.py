"""Dataset names -> where the data is and how to turn it into frames.

"esci" is vendored in the repo (data/esci); "icecat" lives in the shared data folder next to
the repo or under $AISLE_SHARED_DATA; "synthetic:N" is generated; anything else is a path to a
parquet file in the esci or icecat layout, recognised by its columns. Each dataset writes SKUs
under its own prefix, so datasets never collide and a forced reload can find its old rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq

from adapters.loading import esci, icecat
from adapters.loading.frames import CatalogFrames, IdSource
from adapters.loading.synthetic import synthetic_chunks
from domain.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
ESCI_FILE = REPO / "data" / "esci" / "products.parquet"
SHARED_DATA_ENV = "AISLE_SHARED_DATA"

Build = Callable[[int, IdSource], Iterator[CatalogFrames]]  # (seed, ids) -> frames


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str  # as recorded in catalog_loads
    sku_prefix: str
    build: Build


def icecat_file() -> Path:
    shared = os.environ.get(SHARED_DATA_ENV, "").strip()
    candidates = [Path(shared).expanduser() / "icecat" / "products.parquet"] if shared else []
    candidates.append(REPO.parent / "shared" / "data" / "icecat" / "products.parquet")
    for path in candidates:
        if path.is_file():
            return path
    raise ConfigError("icecat data not found; looked in "
                      + ", ".join(str(p) for p in candidates)
                      + f" (set {SHARED_DATA_ENV} to the folder holding icecat/)")


def _from_file(path: Path, layout: str, sku_prefix: str) -> Build:
    mapper = esci.map_esci if layout == "esci" else icecat.map_icecat

    def build(seed: int, ids: IdSource) -> Iterator[CatalogFrames]:
        yield mapper(pq.read_table(path), seed=seed, ids=ids, sku_prefix=sku_prefix)

    return build


def _synthetic(spec: str) -> Dataset:
    try:
        n = int(spec.partition(":")[2])
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"dataset {spec!r}: expected synthetic:N with N a positive integer")
    prefix = f"SYN{n}"

    def build(seed: int, ids: IdSource) -> Iterator[CatalogFrames]:
        return synthetic_chunks(n, seed=seed, ids=ids, sku_prefix=prefix)

    return Dataset(f"synthetic:{n}", prefix, build)


def layout_of(path: Path) -> str:
    columns = set(pq.read_schema(path).names)
    if columns >= esci.SIGNATURE:
        return "esci"
    if columns >= icecat.SIGNATURE:
        return "icecat"
    raise ConfigError(f"{path}: not an esci or icecat parquet file (expected columns "
                      f"{sorted(esci.SIGNATURE)} or {sorted(icecat.SIGNATURE)})")


def resolve(dataset: str) -> Dataset:
    if dataset == "esci":
        if not ESCI_FILE.is_file():
            raise ConfigError(f"esci data not found at {ESCI_FILE}")
        return Dataset("esci", "ESCI", _from_file(ESCI_FILE, "esci", "ESCI"))
    if dataset == "icecat":
        return Dataset("icecat", "ICECAT", _from_file(icecat_file(), "icecat", "ICECAT"))
    if dataset.startswith("synthetic:"):
        return _synthetic(dataset)
    path = Path(dataset).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"unknown dataset {dataset!r}: expected esci, icecat, synthetic:N or "
                          "the path of a parquet file")
    layout = layout_of(path)
    tag = hashlib.sha1(str(path).encode()).hexdigest()[:6].upper()
    prefix = f"{layout.upper()}.{tag}"
    return Dataset(str(path), prefix, _from_file(path, layout, prefix))
