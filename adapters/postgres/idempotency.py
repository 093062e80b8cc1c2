"""Idempotency keys bound to the request they first came with (as Stripe does)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator

import asyncpg

from domain.errors import NotFound, ValidationFailed
from domain.pricing.tokens import canonical_json


class IdempotencyKeyReused(ValidationFailed):
    """The key was used before with another request (422)."""

    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__({"Idempotency-Key": "was used before with another request"},
                         "idempotency key reused with another request")


def fingerprint(request: object) -> str:
    """sha256 of the canonical JSON of `request` (what identifies it: route, path, body)."""
    return hashlib.sha256(canonical_json(request)).hexdigest()


@contextlib.asynccontextmanager
async def bound_key(pool: asyncpg.Pool, scope: str, key: str | None,
                    request: object) -> AsyncIterator[None]:
    """Runs the block as the request `key` is bound to (within `scope`): the first use binds
    it; a use with another request raises IdempotencyKeyReused before the block runs. A
    request refused for its content (ValidationFailed, NotFound) leaves its key unbound, as
    partitions do not remember such refusals either: the corrected request may use it."""
    if key is None:
        yield
        return
    mine = fingerprint(request)
    bound, inserted = await _claim(pool, scope, key, mine)
    if bound != mine:
        raise IdempotencyKeyReused()
    try:
        yield
    except (ValidationFailed, NotFound):
        if inserted:
            await pool.execute("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2",
                               scope, key)
        raise


async def _claim(pool: asyncpg.Pool, scope: str, key: str, mine: str) -> tuple[str, bool]:
    """(the fingerprint the key is bound to, whether this call bound it). One statement:
    of two concurrent first uses, one binds and the other sees its row."""
    row = await pool.fetchrow(
        """INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3)
           ON CONFLICT (scope, key) DO UPDATE SET scope = EXCLUDED.scope
           RETURNING fingerprint, (xmax = 0) AS inserted""", scope, key, mine)
    assert row is not None
    return str(row["fingerprint"]), bool(row["inserted"])
