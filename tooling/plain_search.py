"""The plain-process comparator of scripts/bench_search (issue 15): one uvicorn process, no
Ray, Redis or PostgreSQL, searching copies of the same tantivy shards aisle searches (a
generation's directories) with the same request parameters: BM25 over the words, the URL's
filters, the five sorts, pages, exact facets, merged across shards as aisle merges them
(`domain.search.merge`). What it does not do, and aisle does: query understanding (spelling,
synonyms, "under $20"), re-ranking, live price and stock, caches, rate limits, metrics. So it
is a floor for the same index work, not the same product.

    python -m tooling.plain_search GENERATION_DIR --port 8799
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import orjson
import uvicorn
from fastapi import FastAPI, Query, Response

from adapters.search.tantivy_shard import TantivyShard
from domain.search import Filters, IndexQuery, TextQuery, merge, normalize_key

_WORD = re.compile(r"[0-9a-z]+")


def _shard_dirs(path: Path) -> list[Path]:
    """A generation's shard directories (none: `path` is not a generation)."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_dir() and p.name.startswith("shard-"))


def newest_generation(root: Path) -> Path | None:
    """`root` if it is an index generation (it holds shard-* directories), else the newest
    generation below it: under a data dir (index/<cluster>/g...), its index dir or one
    cluster's; None if there is none."""
    if _shard_dirs(root):
        return root
    found = [g for pattern in ("g*", "*/g*", "index/*/g*") for g in root.glob(pattern)
             if _shard_dirs(g)]
    return max(found, key=lambda g: g.stat().st_mtime, default=None)


def copy_generation(generation: Path, into: Path) -> list[Path]:
    """The generation's shard directories and files, copied (tantivy allows one writer per
    directory, and the live service holds it): the copies' shard directories."""
    if not _shard_dirs(generation):
        raise SystemExit(f"{generation} holds no shard-* directories: not an index generation"
                         " (pass its g... directory)")
    target = into / generation.name
    shutil.copytree(generation, target, ignore=shutil.ignore_patterns("*.lock"))
    return _shard_dirs(target)


def make_app(shard_dirs: list[Path]) -> FastAPI:
    shards = [TantivyShard(p) for p in shard_dirs]
    app = FastAPI(title="plain search (bench comparator)")

    @app.get("/api/v1/noop")
    async def noop() -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    @app.get("/api/v1/products/search")
    def search(q: str = "", brand: Annotated[list[str] | None, Query()] = None,
               category: int | None = None, price_min: float | None = None,
               price_max: float | None = None, rating_min: float | None = None,
               in_stock: bool | None = None, color: str | None = None,
               sort: str = "relevance", page: Annotated[int, Query(ge=1, le=500)] = 1,
               page_size: Annotated[int, Query(ge=1, le=100)] = 20) -> Response:
        words = _WORD.findall(q.lower())
        query = IndexQuery(
            TextQuery(tuple((w,) for w in words)),
            Filters(category_ids=(category,) if category is not None else (),
                    brands=tuple(normalize_key(b) for b in brand or ()),
                    price_min=price_min, price_max=price_max, rating_min=rating_min,
                    in_stock=in_stock,
                    attributes=(("color", (normalize_key(color),)),) if color else ()),
            sort if sort in ("relevance", "price_asc", "price_desc", "rating",
                             "newest") else "relevance",
            (page - 1) * page_size, page_size)
        parts = [s.search(IndexQuery(query.text, query.filters, query.sort, 0,
                                     query.offset + query.limit)) for s in shards]
        done = merge(parts, query)
        f = done.facets
        body = {"total": done.total, "page": page,
                "results": [{"product_id": str(h.product_id), "title": h.doc.get("title"),
                             "price": h.doc.get("price"), "brand": h.doc.get("brand"),
                             "rating": h.doc.get("rating_avg")} for h in done.hits],
                "facets": {"brands": f.brands, "price_ranges": f.price_ranges,
                           "ratings": {str(k): n for k, n in f.ratings.items()},
                           "categories": {str(k): n for k, n in f.categories.items()},
                           "attributes": f.attributes}}
        return Response(orjson.dumps(body), media_type="application/json")

    return app


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m tooling.plain_search", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("generation", type=Path, help="an index generation's directory (g...)")
    p.add_argument("--port", type=int, default=8799)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="plain-search-") as tmp:
        app = make_app(copy_generation(a.generation, Path(tmp)))
        uvicorn.run(app, host="127.0.0.1", port=a.port, log_level="warning",
                    access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
