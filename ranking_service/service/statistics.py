"""``record_completed_orders``: counting completed orders, deduplicated by event id and, for good,
by order id (one completed order counts once, however late a copy comes).

The consumer runs it through the platform's pipeline (``shared.messaging.pipeline``): one
transaction per consumed batch, retried whole on a conflict (the claim keeps it exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from ranking_service.domain.commands import RecordCompletedOrder
from ranking_service.domain.model import tally
from ranking_service.service.ports import UnitOfWork

CONSUMER = "ranking"
"""The consumer name of ranking's inbox rows."""


async def record_completed_orders(uow: UnitOfWork, tz: ZoneInfo, cmds: Sequence[RecordCompletedOrder]) -> int:
    """Inside ``uow``'s open transaction: claim the batch's events and orders (one statement, the
    inbox claim fused in) and add the orders new to both to the daily counters; return how many."""
    new = await uow.orders.claim(CONSUMER, [(c.event_id, c.order_id) for c in cmds])
    fresh = {c.order_id: c for c in cmds if c.order_id in new}  # duplicates in a batch count once
    await uow.sales.add(tally((c.order for c in fresh.values()), tz))
    return len(fresh)
