import pytest

from adapters.postgres.migrate import Migration, packaged_migrations, parse_migrations, plan
from domain.errors import ConfigError


def test_migrations_sorted_by_version_not_by_name() -> None:
    ms = parse_migrations({"0010_b.sql": "b", "0002_z.sql": "z", "0001_a.sql": "a"})
    assert [m.version for m in ms] == [1, 2, 10]


def test_duplicate_versions_rejected() -> None:
    with pytest.raises(ConfigError, match="share version 1"):
        parse_migrations({"0001_a.sql": "a", "0001_b.sql": "b"})


def test_badly_named_file_rejected() -> None:
    with pytest.raises(ConfigError, match="NNNN_name"):
        parse_migrations({"1_a.sql": "a"})


def test_plan_skips_applied_and_keeps_order() -> None:
    ms = parse_migrations({"0001_a.sql": "a", "0002_b.sql": "b", "0003_c.sql": "c"})
    todo = plan(ms, {1: ms[0].checksum})
    assert [m.version for m in todo] == [2, 3]


def test_plan_refuses_an_edited_migration() -> None:
    ms = [Migration(1, "a", "CREATE TABLE a()")]
    with pytest.raises(ConfigError, match="edited"):
        plan(ms, {1: Migration(1, "a", "CREATE TABLE b()").checksum})


def test_plan_refuses_unknown_applied_version() -> None:
    with pytest.raises(ConfigError, match="does not know"):
        plan([], {7: "x"})


def test_packaged_migrations_are_contiguous_from_one() -> None:
    versions = [m.version for m in packaged_migrations()]
    assert versions == list(range(1, len(versions) + 1))
