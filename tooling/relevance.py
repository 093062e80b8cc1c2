"""Search quality through the public search API: judged queries searched over HTTP, nDCG@10 of
the results (ranking.metrics). Shared by scripts/eval_relevance, the ranker training pipeline
and the demo."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from ranking.judgments import Judgments
from ranking.metrics import ndcg_of_ids
from tooling.load import internal_headers

REPO = Path(__file__).resolve().parents[1]
SEARCH_PATH = "/api/v1/products/search"
SHARED_DATA_ENV = "AISLE_SHARED_DATA"
TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=10.0, pool=60.0)


class EvalError(Exception):
    """A failure the user can act on; main prints it and exits 1."""


def default_data_dir(env: Mapping[str, str] = os.environ) -> Path:
    shared = env.get(SHARED_DATA_ENV, "").strip()
    return Path(shared).expanduser() if shared else REPO.parent / "shared" / "data"


def judgments_path(data_dir: Path | None, dataset: str) -> Path:
    """<data_dir>/<dataset>/judgments.csv. With no data dir named: the shared folder's (see
    default_data_dir), or for esci the copy vendored in data/esci when that is not there; a
    data dir named is read as named (a wrong path is an error, not another file's figures)."""
    path = (data_dir or default_data_dir()) / dataset / "judgments.csv"
    vendored = REPO / "data" / dataset / "judgments.csv"
    return vendored if data_dir is None and not path.is_file() and vendored.is_file() else path


def result_ids(payload: Any, k: int) -> list[str]:
    """The external ids of the first `k` results of a search response body."""
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        raise EvalError(f"search response has no `results` list: {str(payload)[:200]}")
    ids: list[str] = []
    for item in results[:k]:
        if not isinstance(item, dict) or item.get("external_id") is None:
            raise EvalError(f"search result without `external_id`: {str(item)[:200]}")
        ids.append(str(item["external_id"]).strip())
    return ids


@dataclasses.dataclass(frozen=True)
class RankerRun:
    name: str
    ndcg: dict[str, float]  # query -> nDCG@k
    zero_result: tuple[str, ...]  # queries with no result

    @property
    def mean(self) -> float:
        return sum(self.ndcg.values()) / len(self.ndcg) if self.ndcg else 0.0


def score_run(name: str, judgments: Judgments, results: Mapping[str, Sequence[str]],
              k: int) -> RankerRun:
    """Per-query nDCG@k of one ranker's results (query -> external ids, best first)."""
    ndcg = {q: ndcg_of_ids(list(results[q]), judged, k) for q, judged in judgments.items()}
    zero = tuple(q for q in judgments if not results[q])
    return RankerRun(name, ndcg, zero)


FALLBACK_TRIES = 5  # searches a model fell back on, asked again before it is called broken
FALLBACK_PAUSE_S = 1.5  # past the Gateway's rest from the Ranker after a failed call (1 s)


async def _search(client: httpx.AsyncClient, query: str, ranker: str, k: int,
                  tries: int = FALLBACK_TRIES) -> list[str]:
    params: dict[str, str | int] = {"q": query, "page_size": k, "ranker": ranker}
    for attempt in range(tries):
        try:
            response = await client.get(SEARCH_PATH, params=params)
        except httpx.HTTPError as exc:
            raise EvalError(f"{ranker} / {query!r}: {exc!r} (is the service running on "
                            f"{client.base_url}? see --start)") from exc
        if response.status_code != 200:
            raise EvalError(f"{ranker} / {query!r}: HTTP {response.status_code}: "
                            f"{response.text[:300]}")
        body = response.json()
        said = body.get("ranker") if isinstance(body, dict) else None
        if not (isinstance(said, dict) and said.get("fallback") is True):
            return result_ids(body, k)
        if attempt + 1 < tries:  # a Ranker busy past its deadline (a model loading on a
            await asyncio.sleep(FALLBACK_PAUSE_S)  # busy machine): again, once it is asked again
    # the model could not score it: that order was the formula's, not the ranker's
    raise EvalError(f"{ranker} / {query!r}: the search fell back to the formula {tries} times "
                    f"(its model did not score it: see the Ranker's log), so a figure would be "
                    f"the formula's")


async def fetch(url: str, queries: Sequence[str], ranker: str, k: int,
                concurrency: int) -> dict[str, list[str]]:
    """Query -> result ids for one ranker, `concurrency` requests in flight."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    # a benchmark is one client far faster than a shopper: with the internal token (when
    # set) it is exempt from the per-client rate limits
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=limits,
                                 headers=internal_headers()) as client:

        async def one(q: str) -> list[str]:
            async with gate:
                return await _search(client, q, ranker, k)

        found = await asyncio.gather(*(one(q) for q in queries))
    return dict(zip(queries, found, strict=True))


