"""Configuration: one typed, immutable settings object, read once from the environment.

Every variable is parsed here and nowhere else; a malformed value fails loudly with a
`ConfigError` that names the variable and what was expected.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypedDict
from urllib.parse import urlparse

from domain.errors import ConfigError

__all__ = ["MAX_RESERVATION_TTL_S", "MIN_RETENTION_DAYS", "Addressing", "Network", "Settings"]

Addressing = Literal["path", "virtual", "auto"]  # S3 bucket addressing (botocore's names)

# a reservation lives at most 7 days (AISLE_RESERVATION_TTL_SECONDS, the API's ttl_seconds):
# a shorter retention could forget what an open one's key was answered
MAX_RESERVATION_TTL_S = 7 * 86400
MIN_RETENTION_DAYS = 8


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED_PROXIES = "127.0.0.0/8,::1"  # HAProxy on the same node (serve/haproxy_ingress.py)


def _networks(env: Mapping[str, str], name: str, default: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR blocks; "none" for none."""
    raw = env.get(name, default).strip()
    if raw.lower() == "none":
        return ()
    out: list[Network] = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: expected addresses or CIDR blocks separated by "
                              f"commas (or none), got {part!r}") from None
    return tuple(out)


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")  # "_": container names


def _host(env: Mapping[str, str], name: str, default: str) -> str:
    """An address to listen on: an IP address, or a host name that resolves to one."""
    raw = (env.get(name) or "").strip() or default
    try:
        ipaddress.ip_address(raw)
        return raw
    except ValueError:
        pass
    labels = raw.split(".")
    if (len(raw) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)
            and not all(label.isdigit() for label in labels)):  # "999.1.1.1" is no name
        return raw
    raise ConfigError(f"{name}: expected an IP address or a host name, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}: expected an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}: expected an integer between {lo} and {hi}, got {value}")
    return value


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...]) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    parsed = urlparse(raw.strip())
    if parsed.scheme not in schemes:
        raise ConfigError(f"{name}: expected a URL with scheme {' or '.join(schemes)}, got {raw!r}")
    return raw.strip()


def _base_url(raw: str) -> str:
    """A path on aisle (`/media`) or an absolute http(s) URL (a CDN), without a trailing /."""
    value = raw.strip().rstrip("/") or "/media"
    if not (value.startswith("/") or value.startswith(("http://", "https://"))):
        raise ConfigError(f"AISLE_MEDIA_BASE_URL: {raw!r} is neither a path nor an http(s) URL")
    return value


def _token(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) < 16 or any(c.isspace() for c in raw):
        raise ConfigError(f"{name}: expected at least 16 characters without spaces")
    return raw


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None  # None: start an embedded PostgreSQL under data_dir
    redis_url: str | None = None  # None: start an embedded Redis under data_dir
    es_url: str | None = None  # None: embedded tantivy search index
    data_dir: Path = Path(".aisle-data")
    inventory_partitions: int = 8
    index_shards: int = 2
    # where a Gateway's searches run: LOCAL, on read-only copies of the embedded index's
    # shards opened in the Gateway process (writes stay on the shard actors); ACTORS, a Ray
    # call to every shard actor. Elasticsearch ignores it.
    search_reads: str = "LOCAL"
    # LOCAL reads of a shard of up to this many documents run in the Gateway's event loop
    # (a thread hop cost more than such a search); bigger shards on read threads; 0: always
    search_inline_max_docs: int = 100_000
    # how the Gateway calls the Ranker deployment: GRPC (Serve's interdeployment gRPC
    # transport: 1.2-1.5x the calls/s of ACTOR on two cores) or ACTOR (Ray actor calls)
    ranker_transport: str = "GRPC"
    # orders of the Ranker deployment a Gateway replica remembers by (ranker, the candidates'
    # feature rows): the same rows are not scored again; 0: every learned search calls it
    ranker_orders_kept: int = 4096
    # semantic candidates (domain.search.Near): the products closest to the query's dense
    # vector join a learned ranker's matches (esci nDCG@10 +0.028 offline, for 1.35-1.55x
    # the index's CPU per learned search: docs/benchmarks.md session 27); OFF: never
    semantic_candidates: bool = True
    snowflake_node: int = 0  # high 5 bits of a Snowflake worker id; low 5 bits are leased
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    gateway_replicas: int = 1
    # Ray Serve's per-request access log line in the Gateway and Ranker replicas (a file and
    # stderr, which Ray's log monitor then reads): off by default, it cost a tenth of a
    # search's Gateway CPU (docs/benchmarks.md); requests are counted in the metrics either way
    serve_access_log: bool = False
    pg_pool_max: int = 10
    internal_token: str | None = None
    demo_seller_key: str | None = None
    max_body_bytes: int = 1 << 20
    image_max_bytes: int = 10 << 20  # a seller image upload
    media_dir: Path | None = None  # uploaded images' store (None: <data_dir>/media)
    media_base_url: str = "/media"  # where their thumbnails are served (a CDN's URL)
    # uploaded images in an S3-compatible bucket instead of media_dir (None: media_dir);
    # credentials come from boto3's usual chain (AWS_* variables, profile, role), never here
    media_s3_bucket: str | None = None
    media_s3_endpoint_url: str | None = None  # None: AWS S3 itself; else MinIO, R2, ...
    media_s3_region: str | None = None  # None: boto3's (AWS_REGION / AWS_DEFAULT_REGION)
    media_s3_prefix: str = ""  # keys' prefix in the bucket: "" or ending in "/"
    media_s3_addressing: Addressing = "auto"
    max_variants: int = 100
    max_images: int = 20
    low_stock_threshold: int = 5  # LOW_STOCK ("Almost gone!") at or below this many units
    reservation_ttl_s: int = 900  # default lifetime of a reservation nobody commits
    facet_cache_s: int = 300  # search facet counts kept in Redis (the seed: 5 min); 0: off
    product_cache_s: int = 600  # product page metadata kept in Redis (the seed: 10 min); 0: off
    price_cache_s: int = 60  # price snapshots kept in Redis (the seed: 1 min); 0: off
    category_cache_s: int = 3600  # the category tree kept in each process (the seed: 1 h)
    # whole product pages kept in each Gateway process, dropped on the catalog events Redis
    # relays; bounds how old the stock status on a page can be; 0: off
    page_local_cache_ms: int = 1000
    quote_secret: str | None = None  # signs price quotes; None: derived from internal_token
    quote_ttl_s: int = 300  # how long a price quote holds
    reprice_interval_s: int = 60  # dynamic pricing pass period (0: off)
    # closed reservations, decided keys, consumed outbox events and ended jobs are kept this
    # long (adapters/postgres/retention.py), pruned every prune_interval_s (0: never)
    retention_days: int = 14
    prune_interval_s: int = 3600
    # index generations of catalogs up to this many active products get dense title vectors
    # (learned rankers' `dense` signal; ~100 titles/s per shard to make); 0: never
    text_vectors_max: int = 100_000
    # "<dataset>:<path>" of judged queries (esci or icecat CSV): a rebuilt index generation
    # must rank them, by nDCG@10, no worse than the live one (within 0.02) to be swapped in
    index_gate_judgments: str | None = None
    # requests a minute, shared by every Gateway (Redis); 0: no limit. The internal token is
    # exempt. Search and suggest count per client address, the seller API per API key.
    rate_limit_search: int = 6000
    rate_limit_seller: int = 1200
    rate_limit_events: int = 1200  # shoppers' events (clicks, add-to-carts) per address
    rate_limit_cart: int = 600  # the shoppers' cart API, per address
    # Ray's placement of the inventory partitions: DEFAULT, or SPREAD over the cluster's nodes
    inventory_scheduling: str = "DEFAULT"
    # peers whose X-Forwarded-For names the client (its last entry): the HAProxy ingress on
    # the same node by default (serve/haproxy_ingress.py); a cluster adds its nodes' subnet
    trusted_proxies: tuple[Network, ...] = _networks({}, "", TRUSTED_PROXIES)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = env.get("AISLE_DATA_DIR", "").strip()
        return cls(
            database_url=_url(env, "DATABASE_URL", ("postgres", "postgresql")),
            redis_url=_url(env, "REDIS_URL", ("redis", "rediss", "unix")),
            es_url=_url(env, "ES_URL", ("http", "https")),
            data_dir=Path(data_dir).expanduser() if data_dir else Path(".aisle-data"),
            inventory_partitions=_int(env, "AISLE_INVENTORY_PARTITIONS", 8, 1, 4096),
            index_shards=_int(env, "AISLE_INDEX_SHARDS", 2, 1, 256),
            search_reads=_one_of(env, "AISLE_SEARCH_READS", ("LOCAL", "ACTORS")),
            search_inline_max_docs=_int(env, "AISLE_SEARCH_INLINE_MAX_DOCS", 100_000, 0,
                                        10**9),
            ranker_transport=_one_of(env, "AISLE_RANKER_TRANSPORT", ("GRPC", "ACTOR")),
            ranker_orders_kept=_int(env, "AISLE_RANKER_ORDERS_KEPT", 4096, 0, 1_000_000),
            semantic_candidates=_one_of(env, "AISLE_SEMANTIC_CANDIDATES", ("ON", "OFF")) == "ON",
            snowflake_node=_int(env, "AISLE_SNOWFLAKE_NODE", 0, 0, 31),
            http_host=_host(env, "AISLE_HTTP_HOST", "127.0.0.1"),
            http_port=_int(env, "AISLE_HTTP_PORT", 8000, 1, 65535),
            gateway_replicas=_int(env, "AISLE_GATEWAY_REPLICAS", 1, 1, 1024),
            serve_access_log=_one_of(env, "AISLE_SERVE_ACCESS_LOG", ("OFF", "ON")) == "ON",
            pg_pool_max=_int(env, "AISLE_PG_POOL_MAX", 10, 1, 1000),
            internal_token=_token(env, "AISLE_INTERNAL_TOKEN"),
            demo_seller_key=_token(env, "AISLE_DEMO_SELLER_KEY"),
            max_body_bytes=_int(env, "AISLE_MAX_BODY_BYTES", 1 << 20, 1024, 64 << 20),
            image_max_bytes=_int(env, "AISLE_IMAGE_MAX_BYTES", 10 << 20, 1024, 100 << 20),
            media_dir=(Path(env["AISLE_MEDIA_DIR"]).expanduser()
                       if env.get("AISLE_MEDIA_DIR", "").strip() else None),
            media_base_url=_base_url(env.get("AISLE_MEDIA_BASE_URL", "/media")),
            **_media_s3(env),
            max_variants=_int(env, "AISLE_MAX_VARIANTS", 100, 1, 10_000),
            max_images=_int(env, "AISLE_MAX_IMAGES", 20, 0, 1_000),
            low_stock_threshold=_int(env, "AISLE_LOW_STOCK_THRESHOLD", 5, 0, 1_000_000),
            reservation_ttl_s=_int(env, "AISLE_RESERVATION_TTL_SECONDS", 900, 1,
                                   MAX_RESERVATION_TTL_S),
            facet_cache_s=_int(env, "AISLE_FACET_CACHE_SECONDS", 300, 0, 86400),
            product_cache_s=_int(env, "AISLE_PRODUCT_CACHE_SECONDS", 600, 0, 86400),
            price_cache_s=_int(env, "AISLE_PRICE_CACHE_SECONDS", 60, 0, 3600),
            page_local_cache_ms=_int(env, "AISLE_PAGE_LOCAL_CACHE_MS", 1000, 0, 5000),
            category_cache_s=_int(env, "AISLE_CATEGORY_CACHE_SECONDS", 3600, 1, 86400),
            quote_secret=_token(env, "AISLE_QUOTE_SECRET"),
            quote_ttl_s=_int(env, "AISLE_QUOTE_TTL_SECONDS", 300, 10, 86400),
            reprice_interval_s=_int(env, "AISLE_REPRICE_INTERVAL_SECONDS", 60, 0, 86400),
            retention_days=_int(env, "AISLE_RETENTION_DAYS", 14, MIN_RETENTION_DAYS, 36500),
            prune_interval_s=_int(env, "AISLE_PRUNE_INTERVAL_SECONDS", 3600, 0, 7 * 86400),
            text_vectors_max=_int(env, "AISLE_TEXT_VECTORS_MAX_PRODUCTS", 100_000, 0,
                                  10**9),
            index_gate_judgments=_gate(env, "AISLE_INDEX_GATE_JUDGMENTS"),
            rate_limit_search=_int(env, "AISLE_RATE_LIMIT_SEARCH_PER_MIN", 6000, 0, 10**9),
            rate_limit_seller=_int(env, "AISLE_RATE_LIMIT_SELLER_PER_MIN", 1200, 0, 10**9),
            rate_limit_events=_int(env, "AISLE_RATE_LIMIT_EVENTS_PER_MIN", 1200, 0, 10**9),
            rate_limit_cart=_int(env, "AISLE_RATE_LIMIT_CART_PER_MIN", 600, 0, 10**9),
            inventory_scheduling=_one_of(env, "AISLE_INVENTORY_SCHEDULING",
                                         ("DEFAULT", "SPREAD")),
            trusted_proxies=_networks(env, "AISLE_TRUSTED_PROXIES", TRUSTED_PROXIES),
        )

    def quote_key(self) -> bytes:
        """The key that signs price quotes: AISLE_QUOTE_SECRET, else one derived from the
        internal token (every replica must share it)."""
        if self.quote_secret is not None:
            return self.quote_secret.encode()
        if self.internal_token is None:
            raise ConfigError("set AISLE_QUOTE_SECRET (or AISLE_INTERNAL_TOKEN) to sign quotes")
        return hashlib.sha256(b"aisle quote key\0" + self.internal_token.encode()).digest()

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PREFIX = re.compile(r"[a-z0-9._-]+(/[a-z0-9._-]+)*")
_ADDRESSING: dict[str, Addressing] = {"path": "path", "virtual": "virtual", "auto": "auto"}
_S3_VARS = ("AISLE_MEDIA_S3_ENDPOINT_URL", "AISLE_MEDIA_S3_REGION", "AISLE_MEDIA_S3_PREFIX",
            "AISLE_MEDIA_S3_ADDRESSING")


def _media_s3(env: Mapping[str, str]) -> _MediaS3:
    """The S3 image store's settings: on when AISLE_MEDIA_S3_BUCKET is set (then
    AISLE_MEDIA_DIR must not be); the other AISLE_MEDIA_S3_* variables need it."""
    bucket = env.get("AISLE_MEDIA_S3_BUCKET", "").strip()
    if not bucket:
        stray = [n for n in _S3_VARS if env.get(n, "").strip()]
        if stray:
            raise ConfigError(f"{stray[0]} is set but AISLE_MEDIA_S3_BUCKET is not")
        return {}
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(f"AISLE_MEDIA_S3_BUCKET: expected a bucket name (3-63 characters: "
                          f"a-z, 0-9, '.', '-'), got {bucket!r}")
    if env.get("AISLE_MEDIA_DIR", "").strip():
        raise ConfigError("set AISLE_MEDIA_DIR or AISLE_MEDIA_S3_BUCKET, not both")
    endpoint = _url(env, "AISLE_MEDIA_S3_ENDPOINT_URL", ("http", "https"))
    region = env.get("AISLE_MEDIA_S3_REGION", "").strip() or None
    if region is not None and not _REGION.fullmatch(region):
        raise ConfigError(f"AISLE_MEDIA_S3_REGION: expected a region name, got {region!r}")
    prefix = env.get("AISLE_MEDIA_S3_PREFIX", "").strip().strip("/")
    if prefix and (not _PREFIX.fullmatch(prefix) or ".." in prefix.split("/")):
        raise ConfigError(f"AISLE_MEDIA_S3_PREFIX: expected path segments of a-z, 0-9, '.', "
                          f"'_', '-' separated by '/', got {prefix!r}")
    # unset: path-style with an endpoint (what MinIO and most S3-compatible servers want)
    raw = env.get("AISLE_MEDIA_S3_ADDRESSING", "").strip().lower() or (
        "path" if endpoint else "auto")
    addressing = _ADDRESSING.get(raw)
    if addressing is None:
        raise ConfigError(f"AISLE_MEDIA_S3_ADDRESSING must be one of path, virtual, auto, "
                          f"got {raw!r}")
    return {"media_s3_bucket": bucket, "media_s3_endpoint_url": endpoint,
            "media_s3_region": region, "media_s3_prefix": prefix + "/" if prefix else "",
            "media_s3_addressing": addressing}


class _MediaS3(TypedDict, total=False):
    media_s3_bucket: str
    media_s3_endpoint_url: str | None
    media_s3_region: str | None
    media_s3_prefix: str
    media_s3_addressing: Addressing


def _one_of(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first when unset), case-insensitive."""
    raw = env.get(name, "").strip().upper() or choices[0]
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _gate(env: Mapping[str, str], name: str) -> str | None:
    """`<dataset>:<path>` with a known dataset and an existing file."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    dataset, sep, path = raw.partition(":")
    if not sep or dataset not in ("esci", "icecat") or not Path(path).expanduser().is_file():
        raise ConfigError(f"{name} must be esci:<path> or icecat:<path> of a judgments CSV "
                          f"file, got {raw!r}")
    return f"{dataset}:{Path(path).expanduser().resolve()}"
