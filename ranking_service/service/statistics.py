"""Counting completed orders: one transaction per consumed batch, deduplicated by event id and,
for good, by order id (one completed order counts once, however late a copy comes)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import asyncpg

from ranking_service.db.counted import claim_orders
from ranking_service.db.sales import add_tally
from ranking_service.domain.sales import CompletedOrder, SoldItem, tally
from ranking_service.service.context import Ranking
from shared.db.uow import UnitOfWork
from shared.events.orders import OrderCompleted

log = logging.getLogger(__name__)

CONSUMER = "ranking"
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


def to_order(event: OrderCompleted) -> CompletedOrder:
    items = tuple(SoldItem(i.product_id, i.name, i.quantity) for i in event.items)
    return CompletedOrder(event.completed_at, items)


async def _apply(ctx: Ranking, events: Sequence[OrderCompleted]) -> int:
    async with UnitOfWork(ctx.pool) as uow:
        new = await claim_orders(uow.conn, CONSUMER, [(e.event_id, e.order_id) for e in events])
        fresh = {e.order_id: e for e in events if e.order_id in new}  # duplicates in a batch count once
        await add_tally(uow.conn, tally((to_order(e) for e in fresh.values()), ctx.tz))
        await uow.commit()
    return len(fresh)


async def record_completed_orders(ctx: Ranking, events: Sequence[OrderCompleted]) -> int:
    """Add ``events`` not seen before to the daily counters; return how many were new."""
    for attempt in range(5):
        try:
            applied = await _apply(ctx, events)
            break
        except _RETRYABLE:
            if attempt == 4:
                raise
            log.info("statistics batch conflicted; retrying", extra={"attempt": attempt})
    if applied:
        ctx.cache.clear()
    return applied
