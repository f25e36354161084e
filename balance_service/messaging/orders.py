"""Consumer of ``order.completed`` (group ``balance-orders``): an order is final, so the money its
deduction took stops counting toward the user's limit as held.

Why this signal (README "Held money and the limit"): the event is already published, once per
completed order, in the transaction that completes it (outbox), and delivered at least once; it
costs order_service nothing and adds no hop to the order. The failure side needs no signal: a
failed order's deduction is always refunded first (``RefundBalance`` releases what it held).
"""

from __future__ import annotations

from aiohttp import web

from balance_service.bootstrap import DEPS
from balance_service.domain.commands import ReleaseHeld
from balance_service.service import payments
from balance_service.service.ports import UnitOfWork, UnitOfWorkFactory
from shared.events.orders import OrderCompleted
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming
from shared.messaging.pipeline import Pipeline

GROUP = "balance-orders"


def completed_handler(uow: UnitOfWorkFactory) -> BatchHandler:
    """Release what the batch's completed orders held: one statement per batch (the pipeline's unit
    of work in single-statement mode; no inbox: the release is idempotent)."""

    async def apply(single: UnitOfWork, batch: list[Incoming]) -> None:
        order_ids = [item.message.order_id for item in batch if isinstance(item.message, OrderCompleted)]
        if order_ids:
            await payments.release_held(single, ReleaseHeld(tuple(order_ids)))

    return Pipeline(lambda: uow(single_statement=True), GROUP).whole(apply, claim=False)


def from_app(app: web.Application) -> BatchHandler:
    return completed_handler(app[DEPS].uow)
