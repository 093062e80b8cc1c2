"""Ray actors: inventory partitions, index builders, search-index shards.

Every Ray call for an actor type goes through one small wrapper per type, so the logic that
uses it can be tested with a fake.
"""

from __future__ import annotations

import hashlib
from typing import Any

NAMESPACE = "aisle"  # every named actor of the project


def database_tag(dsn: str) -> str:
    """A short stable tag of a database (one set of named actors per database)."""
    return hashlib.sha256(dsn.encode()).hexdigest()[:10]


def named(actor_class: Any, name: str, **options: Any) -> Any:
    """`actor_class` set to start detached under `name`, or to give the one already running
    (`options`: more of Ray's actor options, e.g. a scheduling strategy)."""
    return actor_class.options(name=name, namespace=NAMESPACE, get_if_exists=True,
                               lifetime="detached", **options)
