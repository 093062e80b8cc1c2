"""Scratch databases: created, migrated, and dropped after use (benchmarks)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlparse, urlunparse

import asyncpg

from adapters.postgres import connect
from adapters.postgres.migrate import migrate


@asynccontextmanager
async def temp_database(server: str) -> AsyncIterator[str]:
    """A new migrated database on the server at `server` (its DSN), dropped at the end."""
    name = f"aisle_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = urlunparse(urlparse(server)._replace(path="/" + name))
    try:
        conn = await connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield dsn
    finally:
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
