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


async def saga(pool: object, step: str, status: str) -> uuid.UUID:
    """An order and its saga at ``step``."""
    order_id = uuid.uuid4()
    await pool.execute(  # type: ignore[attr-defined]
        "INSERT INTO orders (order_id, user_id, status, total_amount) VALUES ($1, 1, $2, 1000)", order_id, status
    )
    await pool.execute(  # type: ignore[attr-defined]
        "INSERT INTO sagas (order_id, step, data) VALUES ($1, $2, '{}')", order_id, step
    )
    return order_id


@pytest.mark.integration
@pytest.mark.asyncio
async def test_history_older_than_the_window_goes_unless_its_saga_is_unfinished(new_database) -> None:
    dsn = await new_database("order_history_retention")
    await migrate(dsn, MIGRATIONS)
    pool = await create_pool(dsn, 1, 2)
    try:
        done = await saga(pool, "DONE", "COMPLETED")
        failed = await saga(pool, "FAILED", "FAILED")
        recent = await saga(pool, "DONE", "COMPLETED")
        stuck = await saga(pool, "COMPENSATING", "PENDING")  # behind a dead letter for 40 days, say
        insert = "INSERT INTO saga_history (order_id, at, kind, name) VALUES ($1, now() - $2::interval, 'command', 'X')"
        for order_id in (done, failed, stuck):
            for _ in range(3):
                await pool.execute(insert, order_id, timedelta(days=40))
        await pool.execute(insert, recent, timedelta(days=29))
        ((window,),) = [(w,) for _, w in retention(Settings())]
        deleted = await purge(pool, SAGA_HISTORY, window, batch=2)
        left = sorted(str(r["order_id"]) for r in await pool.fetch("SELECT order_id FROM saga_history"))
    finally:
        await close_pool(pool)
    assert deleted == 6
    assert left == sorted([str(recent), *[str(stuck)] * 3])
