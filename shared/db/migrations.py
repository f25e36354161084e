"""Ordered ``.sql`` migrations per component, recorded in ``schema_migrations``.

Instances that start together serialise on a PostgreSQL advisory lock, so each file is applied
exactly once. A file that changed after it was applied is an error, not a silent skip.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

_LOCK_KEY = 0x5EED_0001
_FILE = re.compile(r"^\d{4}_[A-Za-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    """A migration file changed after it was applied, or is misnamed."""


class SchemaBehind(MigrationError):
    """The database lacks migrations this code ships: the service must not serve on it."""


@dataclass(frozen=True)
class MigrationSource:
    """A folder of ``NNNN_name.sql`` files, recorded under ``namespace``."""

    namespace: str
    directory: Path

    def files(self) -> list[Path]:
        files = sorted(p for p in self.directory.glob("*.sql"))
        for path in files:
            if not _FILE.match(path.name):
                raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
        return files


PLATFORM = MigrationSource("platform", Path(__file__).parent / "migrations")
"""The outbox and inbox tables every service database has."""


def _checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


async def apply_migrations(conn: asyncpg.Connection, sources: list[MigrationSource]) -> list[str]:
    """Apply what is missing, in order; return the names applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   name text PRIMARY KEY, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT name, checksum FROM schema_migrations")
        applied = {row["name"]: row["checksum"] for row in rows}
        for source in sources:
            for path in source.files():
                name = f"{source.namespace}/{path.name}"
                sql = path.read_text()
                if name in applied:
                    if applied[name] != _checksum(sql):
                        raise MigrationError(f"{name} changed after it was applied")
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                        name,
                        _checksum(sql),
                    )
                applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now


async def missing_migrations(conn: asyncpg.Connection, sources: list[MigrationSource]) -> list[str]:
    """The migrations of ``sources`` the database has not applied (all of them on an empty one).

    A file that changed after it was applied is a :class:`MigrationError`. Migrations applied in
    the database but unknown to ``sources`` are fine: a newer release migrated first, and
    migrations are additive, so an older instance still serving during a rolling update works.
    """
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    rows = await conn.fetch("SELECT name, checksum FROM schema_migrations") if exists else []
    applied = {row["name"]: row["checksum"] for row in rows}
    missing = []
    for source in sources:
        for path in source.files():
            name = f"{source.namespace}/{path.name}"
            if name not in applied:
                missing.append(name)
            elif applied[name] != _checksum(path.read_text()):
                raise MigrationError(f"{name} differs from the migration applied in the database")
    return missing


async def check_schema(dsn: str, sources: list[MigrationSource]) -> None:
    """Raise :class:`SchemaBehind` unless every migration of ``sources`` is applied.

    Outside development a service does not migrate at start (a Job does, with the schema owner's
    credentials); it calls this instead and refuses to serve on an older schema.
    """
    conn = await asyncpg.connect(dsn)
    try:
        missing = await missing_migrations(conn, sources)
    finally:
        await conn.close()
    if missing:
        raise SchemaBehind(
            f"the database lacks {len(missing)} migration(s) this release ships ({', '.join(missing)}); "
            "run `python -m <service> migrate` (the migrations Job) first"
        )


async def migrate(dsn: str, sources: list[MigrationSource]) -> list[str]:
    """Connect, apply the migrations of ``sources``, disconnect."""
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations(conn, sources)
    finally:
        await conn.close()
