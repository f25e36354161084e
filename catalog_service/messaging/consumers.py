"""``saga.stock.commands`` -> the stock step -> replies on ``saga.replies`` via the outbox.

A consumed batch goes through the shared pipeline (``shared.messaging.pipeline``) as one
transaction: BEGIN, the inbox claim, the stock step of every new command at once (lock-and-read
the products in id order, claim the orders, read the known ones only if any, one write), the
replies into the outbox, COMMIT. The number of statements does not grow with the batch. A batch
that fails on a deadlock or a serialization conflict is retried one message per transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from catalog_service.bootstrap import DEPS, INBOX, Deps
from catalog_service.domain.commands import DeductStock, RestoreStock, StockCommand
from catalog_service.domain.stock import Answer, merge_lines
from catalog_service.service import stock
from catalog_service.service.ports import UnitOfWork
from shared.events import saga
from shared.messaging import topics
from shared.messaging.envelope import Incoming
from shared.messaging.pipeline import ApplyBatch, BatchHandler, Pipeline, message_context

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


def stock_step(replies_topic: str) -> ApplyBatch[UnitOfWork, list[saga.SagaReply]]:
    """The pipeline's whole-batch apply: the new messages of a batch -> one stock step -> their
    replies into the outbox (on ``replies_topic``, each with its message's request id)."""

    async def apply(uow: UnitOfWork, items: list[Incoming]) -> list[saga.SagaReply]:
        todo = [
            (item, item.message) for item in items if isinstance(item.message, saga.DeductStock | saga.RestoreStock)
        ]
        answers = await stock.apply_stock_commands(uow, [command_of(message) for _, message in todo])
        replies = []
        for (item, message), answer in zip(todo, answers, strict=True):
            reply = reply_to(message, answer)
            with message_context(item):
                uow.publish(replies_topic, reply.order_id, reply)
            replies.append(reply)
        return replies

    return apply


async def apply_stock_batch(deps: Deps, batch: Sequence[Incoming]) -> list[saga.SagaReply]:
    """Apply every command of ``batch`` not yet seen, in order, exactly once; the replies sent.

    One transaction (the pipeline's: BEGIN, inbox claim, the stock step, outbox, COMMIT); on a
    deadlock or a serialization conflict, one message per transaction."""
    sent = await Pipeline(deps.uow, CONSUMER).apply_batch(batch, stock_step(deps.replies_topic))
    return [reply for replies in sent for reply in replies]


def stock_commands_handler(app: web.Application) -> BatchHandler:
    """The batch handler of the ``catalog`` consumer group."""
    deps = app[DEPS]
    return Pipeline(deps.uow, CONSUMER).whole(stock_step(deps.replies_topic))
