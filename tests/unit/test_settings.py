from pathlib import Path

import pytest

from adapters.settings import Settings
from domain.errors import ConfigError


def test_defaults_need_nothing() -> None:
    s = Settings.from_env({})
    assert s.database_url is None and s.redis_url is None and s.es_url is None
    assert s.data_dir == Path(".aisle-data") and s.http_port == 8000
    assert s.semantic_candidates is True


def test_values_are_parsed_and_typed() -> None:
    s = Settings.from_env({
        "DATABASE_URL": "postgresql://u@h:5432/db", "REDIS_URL": "redis://h:6379/1",
        "ES_URL": "http://es:9200", "AISLE_DATA_DIR": "/tmp/x",
        "AISLE_INVENTORY_PARTITIONS": "16", "AISLE_INDEX_SHARDS": " 4 ",
        "AISLE_INTERNAL_TOKEN": "0123456789abcdef", "AISLE_SEMANTIC_CANDIDATES": "off",
    })
    assert s.database_url == "postgresql://u@h:5432/db" and s.redis_url == "redis://h:6379/1"
    assert s.inventory_partitions == 16 and s.index_shards == 4
    assert s.data_dir == Path("/tmp/x") and s.internal_token == "0123456789abcdef"
    assert s.semantic_candidates is False


@pytest.mark.parametrize(("name", "value", "expect"), [
    ("AISLE_INVENTORY_PARTITIONS", "many", "AISLE_INVENTORY_PARTITIONS: expected an integer"),
    ("AISLE_INVENTORY_PARTITIONS", "0", "between 1 and 4096"),
    ("AISLE_HTTP_PORT", "70000", "AISLE_HTTP_PORT"),
    ("AISLE_HTTP_HOST", "not a host!!", "AISLE_HTTP_HOST: expected an IP address"),
    ("AISLE_HTTP_HOST", "999.1.1.1", "AISLE_HTTP_HOST"),
    ("AISLE_HTTP_HOST", "-bad.example", "AISLE_HTTP_HOST"),
    ("DATABASE_URL", "mysql://x", "DATABASE_URL: expected a URL with scheme postgres"),
    ("REDIS_URL", "localhost:6379", "REDIS_URL"),
    ("ES_URL", "es:9200", "ES_URL"),
    ("AISLE_INTERNAL_TOKEN", "short", "AISLE_INTERNAL_TOKEN: expected at least 16"),
    ("AISLE_SNOWFLAKE_NODE", "32", "between 0 and 31"),
    ("AISLE_INVENTORY_SCHEDULING", "random", "AISLE_INVENTORY_SCHEDULING must be one of"),
    ("AISLE_SEMANTIC_CANDIDATES", "maybe", "AISLE_SEMANTIC_CANDIDATES must be one of"),
])
def test_malformed_values_fail_loudly_naming_the_variable(name: str, value: str,
                                                          expect: str) -> None:
    with pytest.raises(ConfigError, match=expect):
        Settings.from_env({name: value})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "127.0.0.1", "localhost", "gw-1.shop.internal",
                                  "3com.example", "aisle_gateway_1"])
def test_listen_addresses(host: str) -> None:
    assert Settings.from_env({"AISLE_HTTP_HOST": f" {host} "}).http_host == host


def test_product_page_cache_lifetimes() -> None:
    s = Settings.from_env({})
    assert (s.product_cache_s, s.price_cache_s, s.category_cache_s) == (600, 60, 3600)
    s = Settings.from_env({"AISLE_PRODUCT_CACHE_SECONDS": "0", "AISLE_PRICE_CACHE_SECONDS": "5",
                           "AISLE_CATEGORY_CACHE_SECONDS": "60"})
    assert (s.product_cache_s, s.price_cache_s, s.category_cache_s) == (0, 5, 60)
    with pytest.raises(ConfigError, match="AISLE_PRICE_CACHE_SECONDS"):
        Settings.from_env({"AISLE_PRICE_CACHE_SECONDS": "7200"})


def test_local_page_copies_last_at_most_a_few_seconds() -> None:
    assert Settings.from_env({}).page_local_cache_ms == 1000
    assert Settings.from_env({"AISLE_PAGE_LOCAL_CACHE_MS": "0"}).page_local_cache_ms == 0
    with pytest.raises(ConfigError, match="AISLE_PAGE_LOCAL_CACHE_MS"):
        Settings.from_env({"AISLE_PAGE_LOCAL_CACHE_MS": "60000"})  # stock would be too old


def test_the_index_relevance_gate_names_a_dataset_and_an_existing_file(
        tmp_path: Path) -> None:
    judged = tmp_path / "j.csv"
    judged.write_text("query,asin,rating\nlamp,B1,100\n")
    assert Settings.from_env({}).index_gate_judgments is None
    got = Settings.from_env({"AISLE_INDEX_GATE_JUDGMENTS": f"esci:{judged}"})
    assert got.index_gate_judgments == f"esci:{judged.resolve()}"
    for bad in (f"amazon:{judged}", str(judged), f"esci:{tmp_path / 'missing.csv'}"):
        with pytest.raises(ConfigError, match="AISLE_INDEX_GATE_JUDGMENTS"):
            Settings.from_env({"AISLE_INDEX_GATE_JUDGMENTS": bad})


@pytest.mark.parametrize(("given", "port"), [("8001", 8001), ("0", None), ("70000", None),
                                             ("x", None)])
def test_the_demos_port_is_checked_before_anything_starts(given: str, port: int | None) -> None:
    from tooling.demo import parse_args
    if port is None:
        with pytest.raises(SystemExit):  # argparse's message naming --port, exit 2
            parse_args(["--port", given])
    else:
        assert parse_args(["--port", given]).port == port
