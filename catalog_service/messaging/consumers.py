"""``saga.stock.commands`` -> the stock handlers -> replies on ``saga.replies`` via the outbox.

A consumed batch is applied in one transaction (``apply_batch``). Before the first command of
that transaction, every product the batch may touch is locked in product-id order, so two
instances applying overlapping batches queue behind each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from catalog_service.domain.model import MAX_ID
from catalog_service.service.stock import deduct_stock, lock_batch, restore_stock
from shared.db.consume import apply_batch
from shared.db.pool import PG_POOL
from shared.db.uow import UnitOfWork
from shared.events.saga import DeductStock, RestoreStock, SagaReply
from shared.messaging import topics
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming
from shared.wiring import TOPICS

CONSUMER = "catalog"
GROUP = "catalog"
TOPICS_CONSUMED = [topics.STOCK_COMMANDS]


async def dispatch(uow: UnitOfWork, message: object) -> SagaReply | None:
    """The handler for one command; ``None`` for messages this service does not act on."""
    if isinstance(message, DeductStock):
        return await deduct_stock(uow, message)
    if isinstance(message, RestoreStock):
        return await restore_stock(uow, message)
    return None


def _scope(batch: Sequence[Incoming]) -> tuple[list[int], list[str]]:
    ids: set[int] = set()
    orders: list[str] = []
    for item in batch:
        if isinstance(item.message, DeductStock):
            ids.update(line.product_id for line in item.message.lines if 1 <= line.product_id <= MAX_ID)
        elif isinstance(item.message, RestoreStock):
            orders.append(item.message.order_id)
    return sorted(ids), orders


def stock_commands_handler(app: web.Application) -> BatchHandler:
    """The batch handler of the ``catalog`` consumer group."""
    pool = app[PG_POOL]
    replies = app[TOPICS](topics.SAGA_REPLIES)

    async def handle(batch: list[Incoming]) -> None:
        first: list[UnitOfWork] = []

        async def apply_one(uow: UnitOfWork, item: Incoming) -> None:
            if not first:  # only the whole-batch transaction; one-by-one retries lock per command
                first.append(uow)
                await lock_batch(uow, *_scope(batch))
            reply = await dispatch(uow, item.message)
            if reply is not None:
                uow.publish(replies, reply.order_id, reply)

        await apply_batch(pool, CONSUMER, batch, apply_one)

    return handle
