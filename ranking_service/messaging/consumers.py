"""``order.completed`` -> the daily sales counters (consumer group ``ranking``)."""

from __future__ import annotations

from ranking_service.bootstrap import Deps
from ranking_service.domain.commands import RecordCompletedOrder
from ranking_service.domain.model import CompletedOrder, SoldItem
from ranking_service.service.statistics import record_batch
from shared.events.orders import OrderCompleted
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming

GROUP = "ranking"


def to_command(event: OrderCompleted) -> RecordCompletedOrder:
    """The command of one ``order.completed`` event."""
    items = tuple(SoldItem(i.product_id, i.name, i.quantity) for i in event.items)
    return RecordCompletedOrder(event.event_id, event.order_id, CompletedOrder(event.completed_at, items))


def completed_orders_handler(deps: Deps) -> BatchHandler:
    """The batch handler: every ``OrderCompleted`` of the batch, in one transaction."""

    async def handle(batch: list[Incoming]) -> None:
        cmds = [to_command(item.message) for item in batch if isinstance(item.message, OrderCompleted)]
        if cmds:
            await record_batch(deps.uow, deps.cache, deps.tz, cmds)

    return handle
