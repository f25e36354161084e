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
from balance_service.service.ports import PaymentsRepository, UnitOfWork, UnitOfWorkFactory
from shared.db.consume import message_context, split_on_conflict
from shared.messaging.envelope import Incoming, Message, Outgoing

log = logging.getLogger(__name__)

CommandOf = Callable[[Message], SagaCommand | None]
"""The command a consumed message asks for; ``None`` for a message not meant for us."""
ReplyOf = Callable[[Incoming, SagaOutcome], Outgoing]
"""The reply to a consumed message, given its outcome."""

_RECORD_RACE_ATTEMPTS = 3


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


async def _apply(
    uow: UnitOfWorkFactory, consumer: str, batch: Sequence[Incoming], command_of: CommandOf, reply_of: ReplyOf
) -> Settlement:
    """One transaction: the messages of ``batch`` new to ``consumer``'s inbox, applied in order."""
    commands = [command_of(item.message) for item in batch]
    async with uow() as tx:
        new, records, balances = await _lock(
            tx.payments, [c for c in commands if c is not None], consumer, [item.event_id for item in batch]
        )
        todo: list[tuple[Incoming, SagaCommand]] = []
        for item, cmd in zip(batch, commands, strict=True):
            if item.event_id not in new:
                continue
            new.discard(item.event_id)  # a duplicate inside the same batch applies once
            if cmd is None:
                with message_context(item):
                    log.warning(
                        "ignored message on the balance commands topic", extra={"type": type(item.message).__name__}
                    )
                continue
            todo.append((item, cmd))
        settlement = settle([cmd for _, cmd in todo], records, balances)
        replies = [reply_of(item, outcome) for (item, _), outcome in zip(todo, settlement.outcomes, strict=True)]
        await tx.payments.write(settlement, replies)
        await tx.commit()
    return settlement


async def _apply_fresh(
    uow: UnitOfWorkFactory, consumer: str, batch: Sequence[Incoming], command_of: CommandOf, reply_of: ReplyOf
) -> None:
    """:func:`_apply`, again from the start when an order was recorded by another transaction
    meanwhile (a re-sent command handled by two instances around a rebalance): the new read
    sees that record and answers from it."""
    for attempt in range(_RECORD_RACE_ATTEMPTS):
        try:
            await _apply(uow, consumer, batch, command_of, reply_of)
            return
        except PaymentRecordRacedError:
            if attempt == _RECORD_RACE_ATTEMPTS - 1:
                raise
            log.info("an order was recorded concurrently; applying the batch again", extra={"size": len(batch)})


async def apply_commands(
    uow: UnitOfWorkFactory, consumer: str, batch: Sequence[Incoming], command_of: CommandOf, reply_of: ReplyOf
) -> None:
    """Apply every message of ``batch`` not yet seen by ``consumer``, in order, exactly once: inbox
    claim, effects and replies in one transaction; one by one after a deadlock or serialization
    failure (as ``shared.db.consume.apply_batch``)."""
    await split_on_conflict(batch, lambda items: _apply_fresh(uow, consumer, items, command_of, reply_of))


async def release_held(uow: UnitOfWorkFactory, cmd: ReleaseHeld) -> None:
    """These orders completed: the money their deductions took is kept for good and no longer
    counts toward the users' limit as held (a completed order is never refunded). One statement,
    idempotent (a record releases once), so a redelivered ``order.completed`` changes nothing."""
    async with uow(single_statement=True) as single:
        await single.payments.release_held(cmd.order_ids)
