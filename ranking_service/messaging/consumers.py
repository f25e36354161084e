"""``order.completed`` -> the daily sales counters (consumer group ``ranking``).

Through the platform's pipeline: the whole batch in one transaction, whose one claim statement
records the inbox and the counted orders (``claim=False``: the handler claims); a conflict runs
the whole batch again (``on_conflict="retry"``), as the counters of a batch go in one statement.
"""

from __future__ import annotations

from ranking_service.bootstrap import Deps
from ranking_service.domain.commands import RecordCompletedOrder
from ranking_service.domain.model import CompletedOrder, SoldItem
from ranking_service.service.ports import UnitOfWork
from ranking_service.service.statistics import CONSUMER, record_completed_orders
from shared.events.orders import OrderCompleted
from shared.messaging.envelope import Incoming
from shared.messaging.pipeline import BatchHandler, Pipeline

GROUP = "ranking"


def to_command(event: OrderCompleted) -> RecordCompletedOrder:
    """The command of one ``order.completed`` event."""
    items = tuple(SoldItem(i.product_id, i.name, i.quantity) for i in event.items)
    return RecordCompletedOrder(event.event_id, event.order_id, CompletedOrder(event.completed_at, items))


def completed_orders_handler(deps: Deps) -> BatchHandler:
    """The batch handler: every ``OrderCompleted`` of the batch, in one transaction; the answer
    cache is cleared after the commit when an order counted."""
    conflicts = deps.uow.conflicts
    pipeline = Pipeline(deps.uow, CONSUMER, on_conflict="retry", conflict=lambda exc: isinstance(exc, conflicts))

    async def apply(uow: UnitOfWork, items: list[Incoming]) -> int:
        cmds = [to_command(item.message) for item in items if isinstance(item.message, OrderCompleted)]
        return await record_completed_orders(uow, deps.tz, cmds)

    async def handle(batch: list[Incoming]) -> None:
        orders = [item for item in batch if isinstance(item.message, OrderCompleted)]
        if orders and any(await pipeline.apply_batch(orders, apply, claim=False)):
            deps.cache.clear()

    return handle
