"""bench_search's plain comparator finds the index generation it copies (the demo's data dir,
its index dir, a cluster's dir or the generation itself), and refuses a directory holding no
shards: it once served empty answers from one, and the ratios read 15x."""

import os
from pathlib import Path

import pytest

from tooling.plain_search import copy_generation, newest_generation


def _generation(root: Path, name: str, mtime: int) -> Path:
    g = root / "index" / "c0ffee" / name
    (g / "shard-0").mkdir(parents=True)
    (g / "shard-1").mkdir()
    (g / "shard-0" / "meta.json").write_text("{}")
    os.utime(g, (mtime, mtime))
    return g


def test_the_newest_generation_from_any_level(tmp_path: Path) -> None:
    old = _generation(tmp_path, "g1", 1_000)
    new = _generation(tmp_path, "g2", 2_000)
    (tmp_path / "index" / "c0ffee" / "g3").mkdir()  # a generation being built: no shards yet
    for root in (tmp_path, tmp_path / "index", tmp_path / "index" / "c0ffee"):
        assert newest_generation(root) == new
    assert newest_generation(old) == old
    assert newest_generation(tmp_path / "index" / "c0ffee" / "g3") is None


def test_a_directory_without_shards_is_refused(tmp_path: Path) -> None:
    g = _generation(tmp_path, "g1", 1_000)
    with pytest.raises(SystemExit, match="no shard"):
        copy_generation(g.parent, tmp_path / "copy")
    copied = copy_generation(g, tmp_path / "copy")
    assert [p.name for p in copied] == ["shard-0", "shard-1"]
    assert (copied[0] / "meta.json").read_text() == "{}"


def test_each_side_is_charged_its_own_processes_cpu() -> None:
    """aisle: every process measured but the load generator and the (idle) comparator; the
    comparator: its own process alone, not aisle's idle actors meanwhile."""
    from tooling.load import PLAIN_PROCESS, served_cpu_ms

    cpu = {"gateway": 1.0, "redis": 0.25, "load generator (this)": 0.5, PLAIN_PROCESS: 0.125}
    assert served_cpu_ms(cpu, 100) == 12.5
    assert served_cpu_ms(cpu, 100, only=PLAIN_PROCESS) == 1.25
    assert served_cpu_ms({}, 0) == 0.0
