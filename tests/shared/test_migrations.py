"""The migration runner against the real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from shared.db.migrations import PLATFORM, MigrationError, MigrationSource, migrate

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _source(tmp_path: Path) -> MigrationSource:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (folder / "0002_more.sql").write_text("INSERT INTO things VALUES (1), (2);")
    return MigrationSource("test", folder)


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def _platform() -> list[str]:
    """The platform's own files (every service database has them), in order."""
    return [f"platform/{path.name}" for path in PLATFORM.files()]


async def test_applied_once_when_run_twice(new_database, tmp_path: Path) -> None:
    dsn = await new_database("migr")
    source = _source(tmp_path)
    first = await migrate(dsn, [PLATFORM, source])
    second = await migrate(dsn, [PLATFORM, source])
    assert _platform()[0] == "platform/0001_outbox_inbox.sql"
    assert first == [*_platform(), "test/0001_things.sql", "test/0002_more.sql"]
    assert second == []
    assert await _count(dsn, "SELECT count(*) FROM things") == 2


async def test_concurrent_runners_apply_each_file_once(new_database, tmp_path: Path) -> None:
    dsn = await new_database("migr")
    source = _source(tmp_path)
    results = await asyncio.gather(*(migrate(dsn, [PLATFORM, source]) for _ in range(4)))
    total = len(_platform()) + 2
    assert sorted(len(r) for r in results) == [0, 0, 0, total]
    assert await _count(dsn, "SELECT count(*) FROM things") == 2
    assert await _count(dsn, "SELECT count(*) FROM schema_migrations") == total


async def test_a_changed_file_is_refused(new_database, tmp_path: Path) -> None:
    dsn = await new_database("migr")
    source = _source(tmp_path)
    await migrate(dsn, [source])
    (source.directory / "0001_things.sql").write_text("CREATE TABLE things (id bigint PRIMARY KEY);")
    with pytest.raises(MigrationError, match="changed"):
        await migrate(dsn, [source])


async def test_a_failing_file_leaves_nothing_behind(new_database, tmp_path: Path) -> None:
    dsn = await new_database("migr")
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "0001_ok.sql").write_text("CREATE TABLE a (id int);")
    (folder / "0002_bad.sql").write_text("CREATE TABLE b (id int); SELECT no_such_function();")
    with pytest.raises(asyncpg.PostgresError):
        await migrate(dsn, [MigrationSource("bad", folder)])
    assert await _count(dsn, "SELECT count(*) FROM schema_migrations") == 1
    assert await _count(dsn, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'") == 0
