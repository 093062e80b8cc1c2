"""Human relevance judgments (the CSV files of ../shared/data/<dataset>/judgments.csv) as gains.

  icecat  columns query, docid (= products.id), rating 0..3; gain = rating / 3
  esci    columns query, asin, rating 100/10/1/0 (Exact/Substitute/Complement/Irrelevant);
          gain 1.0 / 0.1 / 0.01 / 0 (the KDD Cup 2022 gains)

The doc id is what the search API returns as `external_id` for products of that catalog.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path

Judgments = dict[str, dict[str, float]]  # query -> {doc id -> gain}

DATASETS: tuple[str, ...] = ("esci", "icecat")
DOC_ID_COLUMNS: dict[str, str] = {"esci": "asin", "icecat": "docid"}
ESCI_GAINS: dict[float, float] = {100.0: 1.0, 10.0: 0.1, 1.0: 0.01, 0.0: 0.0}
ICECAT_MAX_RATING = 3.0


def judgment_gain(dataset: str, rating: str | float) -> float:
    """The gain of one judged rating in `dataset`; ValueError for a rating the scale lacks."""
    try:
        r = float(rating)
    except (TypeError, ValueError):
        r = math.nan
    if dataset == "esci":
        if r in ESCI_GAINS:
            return ESCI_GAINS[r]
        raise ValueError(f"esci rating must be one of 100, 10, 1, 0, got {rating!r}")
    if dataset == "icecat":
        if 0.0 <= r <= ICECAT_MAX_RATING:
            return r / ICECAT_MAX_RATING
        raise ValueError(f"icecat rating must be within 0..3, got {rating!r}")
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


def parse_judgments(lines: Iterable[str], dataset: str) -> Judgments:
    """Judgments from CSV text (a header line, then rows). A (query, doc) pair judged twice
    with different ratings is an error; queries and ids are stripped of outer spaces."""
    if dataset not in DOC_ID_COLUMNS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    id_column = DOC_ID_COLUMNS[dataset]
    reader = csv.DictReader(lines)
    missing = {"query", id_column, "rating"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"{dataset} judgments lack columns {sorted(missing)} "
                         f"(found {reader.fieldnames})")
    out: Judgments = {}
    for line, row in enumerate(reader, start=2):
        query, doc_id = (row["query"] or "").strip(), (row[id_column] or "").strip()
        if not query or not doc_id:
            raise ValueError(f"line {line}: empty query or {id_column}")
        try:
            gain = judgment_gain(dataset, row["rating"])
        except ValueError as exc:
            raise ValueError(f"line {line}: {exc}") from None
        judged = out.setdefault(query, {})
        if judged.get(doc_id, gain) != gain:
            raise ValueError(f"line {line}: {query!r} / {doc_id} judged twice, differently")
        judged[doc_id] = gain
    return out


def read_judgments(path: Path, dataset: str) -> Judgments:
    with path.open(newline="", encoding="utf-8") as f:
        return parse_judgments(f, dataset)
