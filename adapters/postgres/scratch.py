"""Scratch databases on a PostgreSQL server: created and migrated, dropped after use
(benchmarks' temporary databases, the test harness's database per session and per test)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlparse, urlunparse

import asyncpg

from adapters.postgres import connect
from adapters.postgres.migrate import migrate


def with_database(dsn: str, name: str) -> str:
    """`dsn` pointing at database `name` of the same server."""
    return urlunparse(urlparse(dsn)._replace(path="/" + name))


async def create_database(server: str, prefix: str) -> tuple[str, str]:
    """A new, migrated database on the server at `server` (a DSN): (its name, its DSN)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = with_database(server, name)
    conn = await connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return name, dsn


async def drop_database(server: str, name: str) -> None:
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def temp_database(server: str) -> AsyncIterator[str]:
    """A new migrated database on the server at `server` (its DSN), dropped at the end."""
    name, dsn = await create_database(server, "aisle_bench")
    try:
        yield dsn
    finally:
        await drop_database(server, name)
