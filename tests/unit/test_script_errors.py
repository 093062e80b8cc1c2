"""Operators' scripts against a service that does not answer: one line saying so, exit 1,
no traceback (as scripts/rankers)."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """scripts/`name` (a file name, `.py` included) run with `args` and a token."""
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args], capture_output=True, text=True,
        timeout=60, cwd=ROOT,
        env={**os.environ, "AISLE_INTERNAL_TOKEN": "t" * 20, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("script, args", [
    ("rebuild_index", ["--status"]),
    ("rebuild_index", []),
    ("inventory_partitions", []),
    ("prewarm", ["--top", "1"]),
    ("train_ranker", ["--dataset", "esci"]),
    ("log_features", ["--dataset", "esci", "--out", "/tmp/aisle-unused.parquet"]),
])
def test_no_service_is_one_line(script: str, args: list[str]) -> None:
    done = _script(f"{script}.py", "--url", "http://127.0.0.1:9", *args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"{script}: no answer from the service"), done.stderr


class _Answer(http.server.BaseHTTPRequestHandler):
    """A service that answers every request with one page (`status`, `kind`, `page`)."""

    status, kind, page = 200, "application/json", b"{}"

    def _page(self) -> None:
        self.send_response(self.status)
        self.send_header("Content-Type", self.kind)
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    do_GET = do_POST = do_PUT = _page

    def log_message(self, *args: object) -> None:
        pass


def _serving(handler: type[_Answer]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _Html503(_Answer):
    """An ingress in front of a service that is down: an HTML error page."""

    status, kind = 503, "text/html"
    page = b"<html><body><h1>503 Service Unavailable</h1>\nNo server is available</body></html>"


@pytest.fixture(scope="module")
def html_503() -> Iterator[str]:
    yield from _serving(_Html503)


@pytest.mark.parametrize("script, args", [
    ("rebuild_index", ["--status"]),
    ("inventory_partitions", []),
    ("prewarm", ["--top", "1"]),
    ("rankers", ["promote", "lgbm_1"]),
    ("rankers", ["list"]),
])
def test_an_html_answer_is_one_line(html_503: str, script: str, args: list[str]) -> None:
    done = _script(f"{script}.py", *args, "--url", html_503)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"{script}: "), done.stderr
    assert "503" in done.stderr and "No server is available" in done.stderr, done.stderr


class _Json422(_Answer):
    """A service refusing the request: its JSON error naming the field."""

    status = 422
    page = (b'{"error": {"code": "validation_failed", "message": "request is invalid", '
            b'"fields": {"partitions": "must be at least 1"}, "problems": ["p1"]}}')


@pytest.fixture(scope="module")
def json_422() -> Iterator[str]:
    yield from _serving(_Json422)


@pytest.mark.parametrize("script, args", [
    ("rebuild_index", ["--workers", "0"]),
    ("rebuild_index", ["--status"]),
    ("prewarm", ["--top", "-5"]),  # it said "name --products, or --top N"
    ("inventory_partitions", ["--set", "0"]),
    ("inventory_partitions", []),
])
def test_a_refusal_is_one_line_on_stderr(json_422: str, script: str, args: list[str]) -> None:
    """The service's error was printed as indented JSON on stdout (7-9 lines), unlike
    scripts/rankers."""
    done = _script(f"{script}.py", *args, "--url", json_422)
    assert done.returncode == 1 and done.stdout == "", done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"{script}: ") and "HTTP 422: request is invalid" in \
        done.stderr and "partitions: must be at least 1" in done.stderr, done.stderr
    assert '{"problems":["p1"]}' in done.stderr, done.stderr  # what else the error names


def test_rebuild_index_refuses_status_with_rollback() -> None:
    """`--rollback --status` showed the status and rolled nothing back, exit 0."""
    done = _script("rebuild_index.py", "--rollback", "--status", "--url", "http://127.0.0.1:9")
    assert done.returncode == 2 and "not both" in done.stderr, done.stderr


@pytest.mark.parametrize("script, args", [
    ("rankers", ["evaluate", "lgbm_1", "--dataset", "esci"]),
    ("train_ranker", ["--dataset", "esci"]),
])
def test_a_data_dir_without_judgments_is_one_line(script: str, args: list[str],
                                                   tmp_path: Path) -> None:
    """A --data-dir named is read as named: the vendored esci copy was read instead, and
    `evaluate` recorded its figures as the model's."""
    done = _script(f"{script}.py", *args, "--data-dir", str(tmp_path),
                   "--url", "http://127.0.0.1:9")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert str(tmp_path / "esci" / "judgments.csv") in done.stderr, done.stderr


@pytest.mark.parametrize("version", ["lgbm_6?x=1", "../../health", "LGBM_6", ""])
def test_a_version_that_is_not_a_name_is_refused(version: str) -> None:
    """It went into the URL path as given: `show "lgbm_6?x=1"` showed lgbm_6."""
    done = _script("rankers.py", "show", version, "--url", "http://127.0.0.1:9")
    assert done.returncode == 2 and "a version is" in done.stderr, done.stderr


@pytest.mark.parametrize("action", ["show", "stop"])
def test_an_experiment_name_that_is_not_a_name_is_refused(action: str) -> None:
    """`experiment stop ../rankers/lgbm_6/archive` archived the model lgbm_6."""
    done = _script("rankers.py", "experiment", action, "../rankers/lgbm_6/archive",
                   "--url", "http://127.0.0.1:9")
    assert done.returncode == 2 and "an experiment's name is" in done.stderr, done.stderr


@pytest.mark.parametrize("folds", ["1", "x", "21"])
def test_train_ranker_folds_are_2_to_20(folds: str) -> None:
    done = _script("train_ranker.py", "--dataset", "esci", "--folds", folds)
    assert done.returncode == 2 and "--folds" in done.stderr, done.stderr


def test_a_feature_log_of_another_catalog_is_refused() -> None:
    """Candidates none of which is a judged product: the service holds another catalog
    (training on it registered models of CV 0.0000)."""
    from tooling.ranker_training import LoggedFeatures, judged
    from tooling.relevance import EvalError

    rows = [{"query": "q", "external_id": "X", "rank": 0, "gain": 0.0, "f": 1.0}]
    with pytest.raises(EvalError, match="does it serve the icecat catalog"):
        judged("icecat", "http://h", LoggedFeatures(["f"], "lf2", rows))
    assert judged("icecat", "http://h", LoggedFeatures(
        ["f"], "lf2", [*rows, {**rows[0], "external_id": "Y", "gain": 1.0}])) == 1


@pytest.mark.parametrize("option", ["--max-p99-ms", "--max-error-rate", "--shadow-sample"])
def test_an_experiments_limits_are_finite_numbers(option: str) -> None:
    done = _script("rankers.py", "experiment", "start", "e1", "--arm", "a=default", "--arm",
                   "b=formula", option, "nan")
    assert done.returncode == 2 and option in done.stderr and "Traceback" not in done.stderr


def test_a_shadow_sample_without_a_shadow_is_refused() -> None:
    """It started an experiment with no shadow at all, silently."""
    done = _script("rankers.py", "experiment", "start", "e1", "--arm", "a=default", "--arm",
                   "b=formula", "--shadow-sample", "0.3")
    assert done.returncode == 2 and "--shadow-sample needs --shadow" in done.stderr


def test_a_malformed_setting_stops_the_demo_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tooling.demo", "--data-dir", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "AISLE_INDEX_SHARDS": "abc", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "AISLE_INDEX_SHARDS" in done.stderr and "abc" in done.stderr, done.stderr
    assert not (tmp_path / "d").exists()  # nothing started
