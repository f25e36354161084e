"""The saga's balance step: Deduct and Refund, a consumed batch at a time.

A batch costs the same few round trips whatever its size: ``BEGIN``; one statement that claims
the messages in the inbox and locks and reads the payment records and balances concerned; the
pure ``settle`` (each command sees what the earlier ones left); one statement that writes the
changes with the replies (outbox); ``COMMIT``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence

from balance_service.domain.commands import Deduct, Refund, ReleaseHeld
from balance_service.domain.errors import PaymentRecordRacedError
from balance_service.domain.payments import (
    DeductOutcome,
    Payment,
    Refunded,
    SagaCommand,
    SagaOutcome,
    Settlement,
    settle,
)
from balance_service.service.ports import PaymentsRepository, UnitOfWork
from shared.messaging.envelope import Incoming, Message, Outgoing
from shared.messaging.pipeline import fresh, message_context

log = logging.getLogger(__name__)

CommandOf = Callable[[Message], SagaCommand | None]
"""The command a consumed message asks for; ``None`` for a message not meant for us."""
ReplyOf = Callable[[Incoming, SagaOutcome], Outgoing]
"""The reply to a consumed message, given its outcome."""

RECORD_RACE_ATTEMPTS = 3
"""How many transactions a batch gets when orders keep being recorded concurrently."""


async def _lock(
    payments: PaymentsRepository,
    commands: Sequence[SagaCommand],
    consumer: str = "",
    message_ids: Sequence[uuid.UUID] = (),
) -> tuple[set[uuid.UUID], dict[str, Payment], dict[int, int]]:
    return await payments.claim_and_lock(
        consumer,
        message_ids,
        [c.order_id for c in commands],
        [c.user_id for c in commands if isinstance(c, Deduct)],
    )


async def _apply_alone(uow: UnitOfWork, cmd: SagaCommand) -> SagaOutcome:
    _, records, balances = await _lock(uow.payments, [cmd])
    settlement = settle([cmd], records, balances)
    await uow.payments.write(settlement, [])
    return settlement.outcomes[0]


async def deduct(uow: UnitOfWork, cmd: Deduct) -> DeductOutcome:
    """Take the order's amount at most once; a Deduct seen before gets the same answer (inside the
    caller's open unit of work)."""
    outcome = await _apply_alone(uow, cmd)
    assert not isinstance(outcome, Refunded)
    return outcome


async def refund(uow: UnitOfWork, cmd: Refund) -> Refunded:
    """Give back what the order took, once; fence an order that took nothing."""
    outcome = await _apply_alone(uow, cmd)
    assert isinstance(outcome, Refunded)
    return outcome


async def settle_batch(
    uow: UnitOfWork, consumer: str, batch: Sequence[Incoming], command_of: CommandOf, reply_of: ReplyOf
) -> Settlement:
    """Inside the pipeline's transaction: claim ``batch`` in ``consumer``'s inbox in the statement
    that locks what it touches, settle the new messages in order, write the changes with the
    replies (a whole-batch apply that claims the inbox itself: ``claim=False``)."""
    commands = [command_of(item.message) for item in batch]
    new, records, balances = await _lock(
        uow.payments, [c for c in commands if c is not None], consumer, [item.event_id for item in batch]
    )
    command_by_id = {item.event_id: cmd for item, cmd in zip(batch, commands, strict=True)}
    todo: list[tuple[Incoming, SagaCommand]] = []
    for item in fresh(batch, new):
        cmd = command_by_id[item.event_id]
        if cmd is None:
            with message_context(item):
                log.warning(
                    "ignored message on the balance commands topic", extra={"type": type(item.message).__name__}
                )
            continue
        todo.append((item, cmd))
    settlement = settle([cmd for _, cmd in todo], records, balances)
    replies = [reply_of(item, outcome) for (item, _), outcome in zip(todo, settlement.outcomes, strict=True)]
    await uow.payments.write(settlement, replies)
    return settlement


def record_raced(exc: BaseException) -> bool:
    """The pipeline's ``retry_if``: another transaction recorded one of the batch's orders after we
    read them (a re-sent command handled by two instances around a rebalance); the transaction runs
    again from the start and its fresh read sees that record and answers from it."""
    if not isinstance(exc, PaymentRecordRacedError):
        return False
    log.info("an order was recorded concurrently; applying the batch again")
    return True


async def release_held(uow: UnitOfWork, cmd: ReleaseHeld) -> None:
    """These orders completed: the money their deductions took is kept for good and no longer
    counts toward the users' limit as held (a completed order is never refunded). One statement,
    idempotent (a record releases once), so a redelivered ``order.completed`` changes nothing."""
    await uow.payments.release_held(cmd.order_ids)
