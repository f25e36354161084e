"""Consumer of ``saga.balance.commands``: each command -> service handler -> reply on ``saga.replies``."""

from __future__ import annotations

import logging

import asyncpg
from aiohttp import web

from balance_service.domain.commands import Deduct, Refund
from balance_service.domain.payments import Deducted, DeductOutcome, Refunded
from balance_service.service import payments
from shared.db.consume import apply_batch
from shared.db.pool import PG_POOL
from shared.db.uow import UnitOfWork
from shared.events.saga import (
    BalanceDeducted, BalanceDeductionFailed, BalanceRefunded, DeductBalance, RefundBalance, SagaReply,
)
from shared.messaging import topics
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming
from shared.wiring import TOPICS

log = logging.getLogger(__name__)

GROUP = "balance"
CONSUMER = "balance-saga"
"""The inbox name of this consumer."""


def deduct_reply(cmd: DeductBalance, outcome: DeductOutcome) -> SagaReply:
    if isinstance(outcome, Deducted):
        return BalanceDeducted(
            order_id=cmd.order_id, command_id=cmd.event_id,
            amount=outcome.amount, balance_after=outcome.balance_after,
        )
    return BalanceDeductionFailed(
        order_id=cmd.order_id, command_id=cmd.event_id, code=outcome.code, reason=outcome.reason
    )


def refund_reply(cmd: RefundBalance, outcome: Refunded) -> SagaReply:
    return BalanceRefunded(order_id=cmd.order_id, command_id=cmd.event_id, amount=outcome.amount)


async def handle(uow: UnitOfWork, message: object) -> SagaReply | None:
    """Apply one saga command; the reply to send, or ``None`` for a message not meant for us."""
    if isinstance(message, DeductBalance):
        outcome = await payments.deduct(uow, Deduct(message.order_id, message.user_id, message.amount))
        return deduct_reply(message, outcome)
    if isinstance(message, RefundBalance):
        return refund_reply(message, await payments.refund(uow, Refund(message.order_id)))
    log.warning("ignored message on the balance commands topic", extra={"type": type(message).__name__})
    return None


def saga_batch_handler(pool: asyncpg.Pool, replies_topic: str) -> BatchHandler:
    """The batch handler: inbox dedup + effects + replies in one transaction per batch."""

    async def apply_one(uow: UnitOfWork, item: Incoming) -> None:
        reply = await handle(uow, item.message)
        if reply is not None:
            uow.publish(replies_topic, reply.order_id, reply)

    async def on_batch(batch: list[Incoming]) -> None:
        await apply_batch(pool, CONSUMER, batch, apply_one)

    return on_batch


def from_app(app: web.Application) -> BatchHandler:
    return saga_batch_handler(app[PG_POOL], app[TOPICS](topics.SAGA_REPLIES))
