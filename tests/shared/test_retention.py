"""The retention job bounds the inbox without breaking deduplication inside the window."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared.db.inbox import claim_new
from shared.db.migrations import PLATFORM, migrate
from shared.db.pool import close_pool, create_pool
from shared.db.retention import INBOX, REPLAYED_DEAD_LETTERS, purge

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def test_old_inbox_rows_go_recent_ones_stay(new_database) -> None:
    dsn = await new_database("retention")
    await migrate(dsn, [PLATFORM])
    pool = await create_pool(dsn, 1, 2)
    try:
        old = [uuid.uuid4() for _ in range(12)]
        recent = uuid.uuid4()
        async with pool.acquire() as conn:
            await claim_new(conn, "c", [*old, recent])
            await conn.execute(
                "UPDATE inbox SET processed_at = now() - interval '80 hours' WHERE message_id = ANY($1)", old
            )
        deleted = await purge(pool, INBOX, timedelta(hours=72), batch=5)
        left = {r["message_id"] for r in await pool.fetch("SELECT message_id FROM inbox")}
        async with pool.acquire() as conn:
            again = await claim_new(conn, "c", [recent])
    finally:
        await close_pool(pool)
    assert deleted == 12
    assert left == {recent}
    assert again == set()  # still recognised as a duplicate inside the window


async def test_dead_letters_replayed_long_ago_go_the_others_stay(new_database) -> None:
    """Replayed a month ago: gone. Replayed lately, or never replayed however old: kept."""
    dsn = await new_database("retention_dl")
    await migrate(dsn, [PLATFORM])
    pool = await create_pool(dsn, 1, 2)
    try:
        insert = (
            "INSERT INTO dead_letters (consumer_group, topic, kafka_partition, kafka_offset, headers,"
            " error_kind, error, failed_at, replayed_at)"
            " VALUES ('g', 't', 0, $1, '[]', 'deterministic', 'e', now() - $2::interval, now() - $3::interval)"
            " RETURNING id"
        )
        month, hour = timedelta(days=31), timedelta(hours=1)
        old_replayed = await pool.fetchval(insert, 1, month, month)
        new_replayed = await pool.fetchval(insert, 2, month, hour)
        never = await pool.fetchval(insert, 3, timedelta(days=400), None)
        deleted = await purge(pool, REPLAYED_DEAD_LETTERS, timedelta(days=30))
        left = {r["id"] for r in await pool.fetch("SELECT id FROM dead_letters")}
    finally:
        await close_pool(pool)
    assert deleted == 1
    assert old_replayed not in left
    assert left == {new_replayed, never}
