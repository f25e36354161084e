"""The saga history is bounded: the retention job purges what is older than
``ORDER_SAGA_HISTORY_RETENTION_HOURS`` (30 days), on the real schema, and keeps the rest."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from order_service.app import MIGRATIONS, retention
from order_service.config import Settings
from order_service.db.history import SAGA_HISTORY
from shared.db.migrations import migrate
from shared.db.pool import close_pool, create_pool
from shared.db.retention import purge


def test_the_order_service_purges_its_saga_history_after_the_configured_window() -> None:
    assert retention(Settings()) == [(SAGA_HISTORY, timedelta(days=30))]
    assert retention(Settings(saga_history_retention_hours=48)) == [(SAGA_HISTORY, timedelta(hours=48))]


@pytest.mark.integration
@pytest.mark.asyncio
async def test_history_older_than_the_window_goes_the_rest_stays(new_database) -> None:
    dsn = await new_database("order_history_retention")
    await migrate(dsn, MIGRATIONS)
    pool = await create_pool(dsn, 1, 2)
    old_order, new_order = uuid.uuid4(), uuid.uuid4()
    try:
        insert = "INSERT INTO saga_history (order_id, at, kind, name) VALUES ($1, now() - $2::interval, 'command', 'X')"
        for _ in range(7):
            await pool.execute(insert, old_order, timedelta(days=31))
        await pool.execute(insert, new_order, timedelta(days=29))
        ((window,),) = [(w,) for _, w in retention(Settings())]
        deleted = await purge(pool, SAGA_HISTORY, window, batch=3)
        left = [r["order_id"] for r in await pool.fetch("SELECT order_id FROM saga_history")]
    finally:
        await close_pool(pool)
    assert deleted == 7
    assert left == [new_order]
