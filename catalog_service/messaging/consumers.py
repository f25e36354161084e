"""``saga.stock.commands`` -> the stock step -> replies on ``saga.replies`` via the outbox.

A consumed batch is one transaction: BEGIN, the inbox claim, the stock step of every new command
at once (lock-and-read the products in id order, claim the orders, read the known ones only if
any, one write), the replies into the outbox, COMMIT. The number of statements does not grow
with the batch. Like ``shared.db.consume.apply_batch``, a batch that fails on a deadlock or a
serialization conflict is retried one message per transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from catalog_service.bootstrap import DEPS, INBOX, Deps
from catalog_service.domain.commands import DeductStock, RestoreStock, StockCommand
from catalog_service.domain.stock import Answer, merge_lines
from catalog_service.service import stock
from shared.db.consume import message_context, split_on_conflict
from shared.events import saga
from shared.messaging import topics
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming

CONSUMER = INBOX
GROUP = "catalog"
TOPICS_CONSUMED = [topics.STOCK_COMMANDS]


def command_of(message: saga.DeductStock | saga.RestoreStock) -> StockCommand:
    """The service command of a saga message."""
    if isinstance(message, saga.DeductStock):
        return DeductStock(message.order_id, merge_lines((line.product_id, line.quantity) for line in message.lines))
    return RestoreStock(message.order_id)


def reply_to(message: saga.DeductStock | saga.RestoreStock, answer: Answer) -> saga.SagaReply:
    """The reply to a saga command, given the stock step's answer."""
    if isinstance(message, saga.RestoreStock):
        return saga.StockRestored(order_id=message.order_id, command_id=message.event_id)
    if answer is None:
        return saga.StockDeducted(order_id=message.order_id, command_id=message.event_id)
    return saga.StockDeductionFailed(
        order_id=message.order_id,
        command_id=message.event_id,
        code=answer.code.value,
        reason=answer.reason,
        product_id=answer.product_id,
    )


async def _apply(deps: Deps, batch: Sequence[Incoming]) -> list[saga.SagaReply]:
    async with deps.uow() as uow:
        new = await uow.inbox.claim_new(CONSUMER, [item.event_id for item in batch])
        todo: list[tuple[Incoming, saga.DeductStock | saga.RestoreStock, StockCommand]] = []
        for item in batch:
            message = item.message
            if item.event_id in new and isinstance(message, saga.DeductStock | saga.RestoreStock):
                new.discard(item.event_id)  # a duplicate inside the same batch applies once
                todo.append((item, message, command_of(message)))
        answers = await stock.apply_stock_commands(uow, [command for _, _, command in todo])
        replies = [reply_to(message, answer) for (_, message, _), answer in zip(todo, answers, strict=True)]
        for (item, _, _), reply in zip(todo, replies, strict=True):
            with message_context(item):
                uow.publish(deps.replies_topic, reply.order_id, reply)
        await uow.commit()
    return replies


async def apply_stock_batch(deps: Deps, batch: Sequence[Incoming]) -> list[saga.SagaReply]:
    """Apply every command of ``batch`` not yet seen, in order, exactly once; the replies sent."""
    sent: list[saga.SagaReply] = []

    async def apply(items: Sequence[Incoming]) -> None:
        sent.extend(await _apply(deps, items))

    await split_on_conflict(batch, apply)
    return sent


def stock_commands_handler(app: web.Application) -> BatchHandler:
    """The batch handler of the ``catalog`` consumer group."""
    deps = app[DEPS]

    async def handle(batch: list[Incoming]) -> None:
        await apply_stock_batch(deps, batch)

    return handle
