"""PostgreSQL through asyncpg: pools, migrations, repositories."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy

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


class _BoundedPool(asyncpg.Pool):
    """A pool whose `acquire` (and so fetch, execute, ...) waits at most `acquire_s` for a
    connection when its caller names no timeout: a server that stalls holds every connection
    of the pool, and a request would wait for a free one as long as the stall lasts."""

    __slots__ = ("_acquire_s",)
    _acquire_s: float | None

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return super().acquire(timeout=self._acquire_s if timeout is None else timeout)


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, acquire_timeout_s: float | None = None,
    **kw: Any
) -> asyncpg.Pool:
    """A pool of connections with the project's codecs and timeouts (asyncpg.create_pool's
    defaults otherwise); with `acquire_timeout_s`, a wait for a free connection longer than
    that is asyncpg's TimeoutError (`unavailable`) instead of a wait without end."""
    pool = _BoundedPool(
        dsn, connection_class=asyncpg.Connection, record_class=asyncpg.Record,
        min_size=min_size, max_size=max_size, max_queries=50_000,
        max_inactive_connection_lifetime=300.0, loop=None, setup=None,
        timeout=CONNECT_TIMEOUT_S, command_timeout=COMMAND_TIMEOUT_S, init=_init_connection,
        **kw)
    pool._acquire_s = acquire_timeout_s
    return await pool


async def ping(pool: asyncpg.Pool) -> None:
    """A round trip to the server (health checks)."""
    await pool.fetchval("SELECT 1")


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL cannot be reached or is shutting down (the server's
    state, not the request's fault): refused or lost connections, the 57xxx
    operator-intervention errors (shutdown, cannot connect now)."""
    # FileNotFoundError: the server's Unix socket is gone (a local or embedded server down);
    # BlockingIOError: its queue of connections not yet accepted is full (a stalled server:
    # uvloop, Serve's event loop, does not wait for room on a Unix socket)
    return isinstance(exc, ConnectionError | FileNotFoundError | asyncpg.PostgresConnectionError
                      | asyncpg.InterfaceError | asyncpg.exceptions.OperatorInterventionError
                      ) or (isinstance(exc, TimeoutError | BlockingIOError)
                            and _through_asyncpg(exc))


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
