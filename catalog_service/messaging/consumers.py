"""``saga.stock.commands`` -> the stock step -> replies on ``saga.replies`` via the outbox.

A consumed batch is one transaction: BEGIN, the inbox claim, the stock step of every new command
at once (lock-and-read the products in id order, claim the orders, read the known ones only if
any, one write), the replies into the outbox, COMMIT. The number of statements does not grow
with the batch. Like ``shared.db.consume.apply_batch``, a batch that fails on a deadlock or a
serialization conflict is retried one message per transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from aiohttp import web

from catalog_service.service.stock import apply_stock_commands
from shared.db.consume import message_context, split_on_conflict
from shared.db.dead_letter_hooks import failure_reply_hook
from shared.db.dead_letters import DeadLetterHook
from shared.db.inbox import claim_new
from shared.db.pool import PG_POOL
from shared.db.uow import UnitOfWork
from shared.events.saga import DeductStock, RestoreStock, SagaReply, StockDeductionFailed
from shared.messaging import topics
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming
from shared.wiring import TOPICS

CONSUMER = "catalog"
GROUP = "catalog"
TOPICS_CONSUMED = [topics.STOCK_COMMANDS]


async def _apply(pool: asyncpg.Pool, batch: Sequence[Incoming], replies: str) -> list[SagaReply]:
    async with UnitOfWork(pool) as uow:
        new = await claim_new(uow.conn, CONSUMER, [item.event_id for item in batch])
        todo: list[Incoming] = []
        commands: list[DeductStock | RestoreStock] = []
        for item in batch:
            if item.event_id in new and isinstance(item.message, DeductStock | RestoreStock):
                new.discard(item.event_id)  # a duplicate inside the same batch applies once
                todo.append(item)
                commands.append(item.message)
        answers = await apply_stock_commands(uow, commands)
        for item, reply in zip(todo, answers, strict=True):
            with message_context(item):
                uow.publish(replies, reply.order_id, reply)
        await uow.commit()
    return answers


async def apply_stock_batch(pool: asyncpg.Pool, batch: Sequence[Incoming], replies: str) -> list[SagaReply]:
    """Apply every command of ``batch`` not yet seen, in order, exactly once; the replies sent."""
    sent: list[SagaReply] = []

    async def apply(items: Sequence[Incoming]) -> None:
        sent.extend(await _apply(pool, items, replies))

    await split_on_conflict(batch, apply)
    return sent


def dead_letter_hook(app: web.Application) -> DeadLetterHook:
    """A set-aside DeductStock fails its order (PROCESSING_FAILED); a RestoreStock waits for a replay."""
    return failure_reply_hook(
        CONSUMER, app[TOPICS](topics.SAGA_REPLIES), {DeductStock: StockDeductionFailed}, (RestoreStock,)
    )


def stock_commands_handler(app: web.Application) -> BatchHandler:
    """The batch handler of the ``catalog`` consumer group."""
    pool = app[PG_POOL]
    replies = app[TOPICS](topics.SAGA_REPLIES)

    async def handle(batch: list[Incoming]) -> None:
        await apply_stock_batch(pool, batch, replies)

    return handle
