"""PostgreSQL through asyncpg: pools, migrations, repositories."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

# A connection, whether owned or borrowed from a pool.
Conn = asyncpg.Connection | PoolConnectionProxy

CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 30.0


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def connect(dsn: str, **kw: Any) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S, command_timeout=COMMAND_TIMEOUT_S,
                                 **kw)
    await _init_connection(conn)
    return conn


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, **kw: Any
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT_S,
        command_timeout=COMMAND_TIMEOUT_S,
        init=_init_connection,
        **kw,
    )
    assert pool is not None
    return pool


async def ping(pool: asyncpg.Pool) -> None:
    """A round trip to the server (health checks)."""
    await pool.fetchval("SELECT 1")


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL cannot be reached or is shutting down (the server's
    state, not the request's fault): refused or lost connections, the 57xxx
    operator-intervention errors (shutdown, cannot connect now)."""
    # FileNotFoundError: the server's Unix socket is gone (a local or embedded server down)
    return isinstance(exc, ConnectionError | FileNotFoundError | asyncpg.PostgresConnectionError
                      | asyncpg.InterfaceError | asyncpg.exceptions.OperatorInterventionError
                      ) or (isinstance(exc, TimeoutError) and _through_asyncpg(exc))


def _through_asyncpg(exc: BaseException) -> bool:
    """Whether `exc` came up through asyncpg: a timeout waiting for a connection or for the
    server's answer (a server that stalls, or a network that drops packets), not another
    library's timeout."""
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("asyncpg"):
            return True
        tb = tb.tb_next
    return False
