"""scripts/eval_relevance.py: argument parsing, response parsing and the report (no HTTP)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tooling import relevance

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "eval_relevance.py"


@pytest.fixture(scope="module")
def ev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_relevance", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_relevance"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules["eval_relevance"]
    return module


def test_arguments(ev: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AISLE_SHARED_DATA", raising=False)
    args = ev.parse_args(["--dataset", "esci"])
    assert args.rankers == ("bm25_title", "default")
    assert args.url == "http://127.0.0.1:8000"
    assert args.data_dir is None  # the shared folder's judgments (or esci's vendored copy)
    assert ev.judgments_path(args.data_dir, "icecat") == (
        ev.REPO.parent / "shared" / "data" / "icecat" / "judgments.csv")
    assert args.service_data_dir == ev.REPO / ".aisle-data" / "eval-esci"
    assert (args.k, args.concurrency, args.start) == (10, 8, False)
    args = ev.parse_args(["--dataset", "icecat", "--url", "http://h:9/", "--start",
                          "--rankers", "default, text,bm25_title,default", "--data-dir", "/d"])
    assert args.rankers == ("bm25_title", "default", "text")
    assert args.url == "http://h:9"
    assert args.data_dir == Path("/d")
    assert args.start
    monkeypatch.setenv("AISLE_SHARED_DATA", "/elsewhere")
    assert ev.judgments_path(ev.parse_args(["--dataset", "icecat"]).data_dir, "icecat") == (
        Path("/elsewhere/icecat/judgments.csv"))
    with pytest.raises(SystemExit):
        ev.parse_args(["--dataset", "amazon"])


def test_result_ids(ev: ModuleType) -> None:
    payload = {"results": [{"external_id": "B01"}, {"external_id": 1229111},
                           {"external_id": " B02 "}], "total": 3}
    assert relevance.result_ids(payload, 10) == ["B01", "1229111", "B02"]
    assert relevance.result_ids(payload, 2) == ["B01", "1229111"]
    assert relevance.result_ids({"results": []}, 10) == []
    with pytest.raises(ev.EvalError, match="no `results`"):
        relevance.result_ids({"error": {"code": "x"}}, 10)
    with pytest.raises(ev.EvalError, match="without `external_id`"):
        relevance.result_ids({"results": [{"product_id": 1}]}, 10)


def test_score_run_and_report(ev: ModuleType) -> None:
    judgments = {"laptop": {"1": 1.0, "2": 1 / 3}, "mouse": {"3": 1.0}, "netflix": {"4": 0.0}}
    base = ev.score_run("bm25_title", judgments,
                        {"laptop": ["2", "1"], "mouse": [], "netflix": ["4"]}, 10)
    better = ev.score_run("default", judgments,
                          {"laptop": ["1", "2"], "mouse": ["9", "3"], "netflix": []}, 10)
    ideal = 1 + (1 / 3) / math.log2(3)
    assert base.ndcg == pytest.approx({"laptop": (1 / 3 + 1 / math.log2(3)) / ideal,
                                       "mouse": 0.0, "netflix": 0.0})
    assert base.zero_result == ("mouse",)
    assert better.ndcg == pytest.approx({"laptop": 1.0, "mouse": 1 / math.log2(3),
                                         "netflix": 0.0})
    assert better.zero_result == ("netflix",)
    report = ev.format_report("icecat", judgments, [base, better], 10, "http://x")
    lines = report.splitlines()
    assert lines[0].startswith("icecat: 3 judged queries")
    assert lines[1].split() == ["ranker", "queries", "nDCG@10", "vs", "bm25_title",
                                "better/worse", "zero-result", "queries"]
    assert lines[2].split() == ["bm25_title", "3", f"{base.mean:.4f}", "—", "—", "1"]
    assert lines[3].split() == ["default", "3", f"{better.mean:.4f}",
                                f"{better.mean - base.mean:+.4f}", "2/0", "1"]
    assert "1 queries have no relevant judged product" in lines[4]
    per_query = ev.format_per_query([base, better]).splitlines()
    assert per_query[0].split() == ["query", "bm25_title", "default"]
    assert per_query[1].split()[0] == "laptop"


def test_spread_over_fresh_starts(ev: ModuleType) -> None:
    judgments = {"laptop": {"1": 1.0, "2": 1 / 3}, "mouse": {"3": 1.0}}
    found = [{"laptop": ["1", "2"], "mouse": ["3"]}, {"laptop": ["2", "1"], "mouse": ["3"]}]
    starts = [([ev.score_run("default", judgments, f, 10)], {"default": f}) for f in found]
    lines = ev.format_spread(starts, 10).splitlines()
    spread = starts[0][0][0].mean - starts[1][0][0].mean
    assert spread > 0
    assert lines[2].split()[:5] == ["default", f"{starts[0][0][0].mean:.4f}",
                                    f"{starts[1][0][0].mean:.4f}", f"{spread:.4f}", "1"]
    assert "'laptop'" in lines[2]
    same = ev.format_spread([starts[0], starts[0]], 10).splitlines()[2].split()
    assert same[3:5] == ["0.0000", "0"]


def test_esci_judgments_fall_back_to_the_vendored_copy(ev: ModuleType, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISLE_SHARED_DATA", str(tmp_path))  # a shared folder without files
    assert ev.judgments_path(None, "esci") == SCRIPT.parents[1] / "data/esci/judgments.csv"
    assert ev.judgments_path(None, "icecat") == tmp_path / "icecat" / "judgments.csv"
    # a folder named is read as named: not another file's figures
    assert ev.judgments_path(tmp_path, "esci") == tmp_path / "esci" / "judgments.csv"


def test_missing_judgments_file(ev: ModuleType, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    assert ev.main(["--dataset", "icecat", "--data-dir", str(tmp_path)]) == 1
    assert "no judgments at" in capsys.readouterr().err


@pytest.mark.parametrize("fallback, raises", [(False, False), (True, True)])
async def test_a_search_that_fell_back_is_no_figure_of_the_ranker(
        fallback: bool, raises: bool) -> None:
    """A model that cannot score searches is ordered by the formula (`fallback: true`):
    evaluating it then measured the formula under its name (a unit test of the parsing: the
    service is a canned answer)."""
    answer = {"results": [{"external_id": "A1"}, {"external_id": "B2"}],
              "ranker": {"requested": "lgbm_9", "version": "lgbm_9", "fallback": fallback}}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        if raises:
            with pytest.raises(relevance.EvalError, match="fell back"):
                await relevance._search(client, "mug", "lgbm_9", 10, tries=2)
        else:
            assert await relevance._search(client, "mug", "lgbm_9", 10) == ["A1", "B2"]
