"""Every Redis key aisle writes, and the invalidation channel's message: one place to read
what lives in Redis and who drops it.

| key | value | written by | dropped by |
|---|---|---|---|
| `aisle:product:{id}` | product page metadata | product pages (cache-aside) | index builder, TTL |
| `aisle:price:{id}` | product page prices | product pages | index builder, TTL |
| `aisle:lastpage:{id}` | last assembled page (stale while PG is down) | product pages | TTL 1 d |
| `aisle:listing:{id}` | [cents, was, {variant: live offer warehouses}] | search | builder, TTL |
| `aisle:facets:{generation}:{digest}` | facet counts of words + filters | search | TTL |
| `aisle:stock:{variant id}` | stock status snapshot | the owning partition actor | TTL |
| `aisle:rl:{scope}:{client}:{window}` | requests counted in a rate-limit window | Gateways | TTL |
| `aisle:exp:{experiment}:{arm}` | an experiment arm's counters (hash) | Gateways | TTL 30 d |
| `aisle:imp:{search id}` | an experiment search's arm and teams | Gateways | TTL 1 h |

The channel `aisle:invalidations` carries product ids (comma-separated) after their keys are
deleted, so processes holding their own copies of those pages drop them too.
"""

from __future__ import annotations

from collections.abc import Iterable

INVALIDATIONS = "aisle:invalidations"


def product_key(product_id: int) -> str:
    return f"aisle:product:{product_id}"


def price_key(product_id: int) -> str:
    return f"aisle:price:{product_id}"


def last_page_key(product_id: int) -> str:
    """A product page as it was last assembled from PostgreSQL: what a product page shows,
    marked stale, while PostgreSQL cannot be reached."""
    return f"aisle:lastpage:{product_id}"


def listing_key(product_id: int) -> str:
    """A product's listing price snapshot: [cents, was cents, {variant: warehouses of its
    live offers}] as the pricing engine shows it in results (null: no sellable variant)."""
    return f"aisle:listing:{product_id}"


def rate_limit_key(scope: str, client: str, window: int) -> str:
    """Requests of `client` (a hashed key or an address) in `scope` during minute `window`."""
    return f"aisle:rl:{scope}:{client}:{window}"


def experiment_arm_key(experiment: str, arm: str) -> str:
    """Counters of one experiment arm: requests, zero results, errors, latency buckets
    (`b<i>`), shadow agreement."""
    return f"aisle:exp:{experiment}:{arm}"


def impression_key(search_id: str) -> str:
    """What an experiment search showed: its experiment, arm, and the team of each result."""
    return f"aisle:imp:{search_id}"


def facets_key(generation: str, digest: str) -> str:
    return f"aisle:facets:{generation}:{digest}"


def stock_key(variant_id: int | str) -> str:
    return f"aisle:stock:{variant_id}"


def stale_keys(product_ids: Iterable[int]) -> list[str]:
    """Every key a change of these products makes stale (the index builder deletes them)."""
    return [key(int(p)) for p in product_ids for key in (product_key, price_key, listing_key)]


def invalidation_message(product_ids: Iterable[int]) -> str:
    """The message announcing these products ("": none, nothing to send)."""
    return ",".join(str(int(p)) for p in product_ids)


def invalidated_ids(message: bytes | str) -> list[int]:
    """The product ids of a channel message as received."""
    text = message.decode() if isinstance(message, bytes) else str(message)
    return [int(x) for x in text.split(",") if x]
