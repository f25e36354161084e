"""Consumer of ``saga.balance.commands``: a consumed batch -> service -> replies on ``saga.replies``."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from balance_service.domain.commands import Deduct, Refund
from balance_service.domain.payments import Deducted, DeductOutcome, Refunded, SagaCommand, SagaOutcome
from balance_service.service import payments
from shared.db.pool import PG_POOL
from shared.events.saga import (
    BalanceDeducted, BalanceDeductionFailed, BalanceRefunded, DeductBalance, RefundBalance, SagaReply,
)
from shared.messaging import topics
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming, Message, Outgoing
from shared.wiring import TOPICS

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


def command_of(message: Message) -> SagaCommand | None:
    """The service command of a saga message; ``None`` for a message not meant for us."""
    if isinstance(message, DeductBalance):
        return Deduct(message.order_id, message.user_id, message.amount)
    if isinstance(message, RefundBalance):
        return Refund(message.order_id)
    return None


def reply(message: Message, outcome: SagaOutcome) -> SagaReply:
    """The reply to a saga command, given its outcome."""
    if isinstance(message, DeductBalance) and not isinstance(outcome, Refunded):
        return deduct_reply(message, outcome)
    if isinstance(message, RefundBalance) and isinstance(outcome, Refunded):
        return refund_reply(message, outcome)
    raise TypeError(f"no reply for {type(message).__name__} with {outcome!r}")


def saga_batch_handler(pool: asyncpg.Pool, replies_topic: str) -> BatchHandler:
    """The batch handler: inbox dedup + effects + replies in one transaction per batch."""

    def reply_of(item: Incoming, outcome: SagaOutcome) -> Outgoing:
        answer = reply(item.message, outcome)
        return Outgoing(replies_topic, str(answer.order_id), answer, item.request_id)

    async def on_batch(batch: list[Incoming]) -> None:
        await payments.apply_commands(pool, CONSUMER, batch, command_of, reply_of)

    return on_batch


def from_app(app: web.Application) -> BatchHandler:
    return saga_batch_handler(app[PG_POOL], app[TOPICS](topics.SAGA_REPLIES))
