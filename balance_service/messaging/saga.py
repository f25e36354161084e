"""Consumer of ``saga.balance.commands``: a consumed batch -> service -> replies on ``saga.replies``."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import Histogram

from balance_service.bootstrap import DEPS
from balance_service.domain.commands import Deduct, Refund
from balance_service.domain.payments import Deducted, DeductOutcome, Refunded, SagaCommand, SagaOutcome
from balance_service.service import payments
from balance_service.service.payments import ReplyOf
from balance_service.service.ports import UnitOfWork, UnitOfWorkFactory
from shared.db.dead_letter_hooks import failure_reply_hook
from shared.db.dead_letters import DeadLetterHook
from shared.events.saga import (
    BalanceDeducted,
    BalanceDeductionFailed,
    BalanceRefunded,
    DeductBalance,
    RefundBalance,
    SagaReply,
)
from shared.messaging import topics
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming, Message, Outgoing
from shared.messaging.pipeline import Pipeline
from shared.web.app import METRICS

GROUP = "balance"
CONSUMER = "balance-saga"
"""The inbox name of this consumer."""


def deduct_reply(cmd: DeductBalance, outcome: DeductOutcome) -> SagaReply:
    if isinstance(outcome, Deducted):
        return BalanceDeducted(
            order_id=cmd.order_id,
            command_id=cmd.event_id,
            amount=outcome.amount,
            balance_after=outcome.balance_after,
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


def pipeline(uow: UnitOfWorkFactory) -> Pipeline[UnitOfWork]:
    """The platform's consumer pipeline for this consumer: one transaction per batch, the inbox
    claimed inside the claim-and-lock statement (``claim=False``), the batch applied again when an
    order was recorded concurrently, one by one after a deadlock or serialization failure."""
    return Pipeline(uow, CONSUMER, retry_if=payments.record_raced, retry_attempts=payments.RECORD_RACE_ATTEMPTS)


async def apply_commands(uow: UnitOfWorkFactory, batch: list[Incoming], reply_of: ReplyOf) -> None:
    """Apply every message of ``batch`` not yet seen by this consumer, in order, exactly once."""

    async def apply(tx: UnitOfWork, items: list[Incoming]) -> None:
        await payments.settle_batch(tx, CONSUMER, items, command_of, reply_of)

    await pipeline(uow).apply_batch(batch, apply, claim=False)


def saga_batch_handler(uow: UnitOfWorkFactory, replies_topic: str, timer: Histogram | None = None) -> BatchHandler:
    """The batch handler: inbox dedup + effects + replies in one transaction per batch (its time
    observed in ``timer``: the consumer's batch time also holds decoding and the offset commit)."""

    def reply_of(item: Incoming, outcome: SagaOutcome) -> Outgoing:
        answer = reply(item.message, outcome)
        return Outgoing(replies_topic, str(answer.order_id), answer, item.request_id)

    async def on_batch(batch: list[Incoming]) -> None:
        started = time.perf_counter()
        await apply_commands(uow, batch, reply_of)
        if timer is not None:
            timer.observe(time.perf_counter() - started)

    return on_batch


_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def dead_letter_hook(app: web.Application) -> DeadLetterHook:
    """A set-aside DeductBalance fails its order (PROCESSING_FAILED); a RefundBalance waits for a replay."""
    return failure_reply_hook(
        CONSUMER, app[DEPS].topics(topics.SAGA_REPLIES), {DeductBalance: BalanceDeductionFailed}, (RefundBalance,)
    )


def from_app(app: web.Application) -> BatchHandler:
    timer = Histogram(
        "balance_saga_batch_apply_seconds",
        "Time to apply one consumed batch of saga commands (its transaction)",
        buckets=_BUCKETS,
        registry=app[METRICS].registry,
    )
    deps = app[DEPS]
    return saga_batch_handler(deps.uow, deps.topics(topics.SAGA_REPLIES), timer)
