"""Versioned SQL migrations, applied at start-up.

Files `NNNN_name.sql` in `migrations/` are applied in version order, each in its own
transaction together with its row in `schema_migrations`. Concurrent starters serialize on an
advisory lock, so applying is idempotent. A migration that was applied and later edited is an
error (its checksum is recorded), never silently skipped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from importlib import resources

import asyncpg

from domain.errors import ConfigError

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x61_69_73_6C  # "aisl"


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def parse_migrations(files: dict[str, str]) -> list[Migration]:
    """Migrations from {filename: sql}, sorted; rejects bad names and duplicate versions."""
    found: dict[int, Migration] = {}
    for filename, sql in files.items():
        m = _FILE.match(filename)
        if not m:
            raise ConfigError(f"migration file {filename!r} is not named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise ConfigError(
                f"two migrations share version {version}: {found[version].name}, {m.group(2)}"
            )
        found[version] = Migration(version, m.group(2), sql)
    return [found[v] for v in sorted(found)]


def plan(available: list[Migration], applied: dict[int, str]) -> list[Migration]:
    """The migrations still to apply, given {version: checksum} of those already applied."""
    known = {m.version: m for m in available}
    for version, checksum in applied.items():
        if version not in known:
            raise ConfigError(f"database has migration {version}, which this code does not know")
        if known[version].checksum != checksum:
            raise ConfigError(
                f"migration {version}_{known[version].name} was edited after it was applied"
            )
    return [m for m in available if m.version not in applied]


def packaged_migrations() -> list[Migration]:
    folder = resources.files("adapters.postgres").joinpath("migrations")
    files = {p.name: p.read_text() for p in folder.iterdir() if p.name.endswith(".sql")}
    return parse_migrations(files)


async def migrate(conn: asyncpg.Connection, available: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    available = packaged_migrations() if available is None else available
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    INTEGER PRIMARY KEY,
                   name       TEXT NOT NULL,
                   checksum   TEXT NOT NULL,
                   applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        pending = plan(available, {r["version"]: r["checksum"] for r in rows})
        for m in pending:
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version, m.name, m.checksum,
                )
        return [m.version for m in pending]
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
