"""The admin saga view: one order's saga with its history, and the unfinished sagas by age."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from order_service.db import repository as repo
from order_service.domain.errors import OrderNotFoundError
from order_service.service.orders import is_uuid
from shared.messaging.envelope import utcnow


async def saga_of(pool: asyncpg.Pool, order_id: str) -> tuple[Any, list[Any]]:
    """The saga row of an order and its history, oldest first."""
    found = await repo.saga_view(pool, order_id) if is_uuid(order_id) else None
    if found is None:
        raise OrderNotFoundError(f"order {order_id} does not exist")
    return found


async def unfinished(
    pool: asyncpg.Pool, *, step: str | None, older_than_s: int | None, limit: int, after: tuple[datetime, str] | None
) -> list[Any]:
    before = utcnow() - timedelta(seconds=older_than_s) if older_than_s is not None else None
    return await repo.unfinished_sagas(pool, step=step, started_before=before, limit=limit, after=after)
