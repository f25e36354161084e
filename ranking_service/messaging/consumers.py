"""``order.completed`` -> the daily sales counters (consumer group ``ranking``)."""

from __future__ import annotations

from ranking_service.service.context import Ranking
from ranking_service.service.statistics import record_completed_orders
from shared.events.orders import OrderCompleted
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming

GROUP = "ranking"


def completed_orders_handler(ctx: Ranking) -> BatchHandler:
    """The batch handler: every ``OrderCompleted`` of the batch, in one transaction."""

    async def handle(batch: list[Incoming]) -> None:
        events = [item.message for item in batch if isinstance(item.message, OrderCompleted)]
        if events:
            await record_completed_orders(ctx, events)

    return handle
