"""Operators' scripts against a service that does not answer: one line saying so, exit 1,
no traceback (as scripts/rankers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script, args", [
    ("rebuild_index", ["--status"]),
    ("rebuild_index", []),
    ("inventory_partitions", []),
    ("prewarm", ["--top", "1"]),
])
def test_no_service_is_one_line(script: str, args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{script}.py"), "--url", "http://127.0.0.1:9",
         *args], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "AISLE_INTERNAL_TOKEN": "t" * 20, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith(f"{script}: no answer from the service"), done.stderr
