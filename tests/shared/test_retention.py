"""The retention job bounds the inbox without breaking deduplication inside the window."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared.db.inbox import claim_new
from shared.db.migrations import PLATFORM, migrate
from shared.db.pool import close_pool, create_pool
from shared.db.retention import INBOX, purge

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
