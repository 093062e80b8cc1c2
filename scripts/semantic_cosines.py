"""scripts/semantic_cosines [--url http://127.0.0.1:8000] [--dataset esci] [--data-dir DIR]

Whether a floor on the semantic candidates' cosine could drop the padding a rare word gets
under a learned ranker without dropping what real queries need: every judged query of
--dataset, and made-up words (10 typed, 20 of random letters, seed 7), through
`GET /api/v1/products/search?explain=true` (AISLE_INTERNAL_TOKEN, as scripts/demo prints
it). Of each search's candidates, those none of whose words match (`coverage` 0) are the
semantic-only ones; their cosine is the `dense` feature. Prints, per set, how many there are
and their cosine's quantiles, and those of the judged best ones (gain 1).
"""

from __future__ import annotations

import argparse
import random
import string
import sys
from pathlib import Path

import httpx

from ranking.judgments import read_judgments
from tooling.load import internal_headers
from tooling.relevance import judgments_path

TYPED = ("zorblax", "qwxzv", "blorptang", "xylofrimp", "snargle wump", "vextor quill",
         "kradnop", "flimzy", "ghrrr", "plonkit zazz")


def made_up(seed: int = 7, n: int = 20) -> list[str]:
    rng = random.Random(seed)
    return [*TYPED, *("".join(rng.choice(string.ascii_lowercase)
                            for _ in range(rng.randint(5, 9))) for _ in range(n))]


def semantic_only(client: httpx.Client, q: str) -> list[tuple[str, float]]:
    """(external id, cosine) of the search's candidates none of whose words match."""
    r = client.get("/api/v1/products/search", params={"q": q, "explain": "true",
                                                      "page_size": 10})
    r.raise_for_status()
    explained = r.json()["explain"]
    names = explained["features"]
    dense, coverage = names.index("dense"), names.index("coverage")
    return [(c["external_id"], c["values"][dense]) for c in explained["candidates"]
            if c["values"][coverage] == 0.0]


def quantiles(values: list[float]) -> str:
    if not values:
        return "-"
    v = sorted(values)
    return " / ".join(f"{v[int(p * (len(v) - 1))]:.3f}" for p in (0.1, 0.5, 0.9, 1.0))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--dataset", default="esci")
    p.add_argument("--data-dir", type=Path, default=None)
    a = p.parse_args()
    judgments = read_judgments(judgments_path(a.data_dir, a.dataset),
                               a.dataset)
    with httpx.Client(base_url=a.url, headers=internal_headers(), timeout=60) as client:
        judged = {q: semantic_only(client, q) for q in sorted(judgments)}
        words = {q: semantic_only(client, q) for q in made_up()}
    best = [c for q, found in judged.items() for ext, c in found
            if judgments[q].get(ext, 0.0) >= 1.0]
    print("| set | queries | with semantic-only candidates | candidates | cosine: 10 % / "
          "median / 90 % / max |")
    print("|---|---:|---:|---:|---|")
    for name, found in ((f"judged {a.dataset} queries", judged), ("made-up words", words)):
        every = [c for f in found.values() for _, c in f]
        print(f"| {name} | {len(found)} | {sum(1 for f in found.values() if f)} | "
              f"{len(every)} | {quantiles(every)} |")
    print(f"| of the judged: the best (gain 1) | | | {len(best)} | {quantiles(best)} "
          f"(lowest {min(best, default=float('nan')):.3f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
