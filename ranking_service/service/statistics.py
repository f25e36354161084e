"""Counting completed orders: one transaction per consumed batch, deduplicated by event id and,
for good, by order id (one completed order counts once, however late a copy comes)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from ranking_service.domain.commands import RecordCompletedOrder
from ranking_service.domain.model import tally
from ranking_service.service.cache import AnswerCache
from ranking_service.service.ports import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

CONSUMER = "ranking"
"""The consumer name of ranking's inbox rows."""


async def record_completed_orders(uow: UnitOfWork, tz: ZoneInfo, cmds: Sequence[RecordCompletedOrder]) -> int:
    """Inside ``uow``'s open transaction: claim the batch's events and orders (one statement, the
    inbox included) and add the orders new to both to the daily counters; return how many."""
    new = await uow.orders.claim(CONSUMER, [(c.event_id, c.order_id) for c in cmds])
    fresh = {c.order_id: c for c in cmds if c.order_id in new}  # duplicates in a batch count once
    await uow.sales.add(tally((c.order for c in fresh.values()), tz))
    return len(fresh)


async def _apply(uow: UnitOfWorkFactory, tz: ZoneInfo, cmds: Sequence[RecordCompletedOrder]) -> int:
    async with uow() as tx:
        applied = await record_completed_orders(tx, tz, cmds)
        await tx.commit()
    return applied


async def record_batch(
    uow: UnitOfWorkFactory, cache: AnswerCache, tz: ZoneInfo, cmds: Sequence[RecordCompletedOrder]
) -> int:
    """A consumed batch in one transaction, retried whole on a deadlock or serialization conflict
    (the claim keeps it exact); the answer cache is cleared when something new counted."""
    for attempt in range(5):
        try:
            applied = await _apply(uow, tz, cmds)
            break
        except uow.conflicts:
            if attempt == 4:
                raise
            log.info("statistics batch conflicted; retrying", extra={"attempt": attempt})
    if applied:
        cache.clear()
    return applied
