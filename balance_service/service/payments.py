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

import asyncpg

from balance_service.db import payments as payments_db
from balance_service.domain.commands import Deduct, Refund
from balance_service.domain.payments import (
    DeductOutcome,
    Payment,
    Refunded,
    SagaCommand,
    SagaOutcome,
    Settlement,
    settle,
)
from balance_service.service.unit_of_work import Connected, SingleStatement, UnitOfWork
from shared.db.consume import message_context, split_on_conflict
from shared.messaging.envelope import Incoming, Message, Outgoing

log = logging.getLogger(__name__)

CommandOf = Callable[[Message], SagaCommand | None]
"""The command a consumed message asks for; ``None`` for a message not meant for us."""
ReplyOf = Callable[[Incoming, SagaOutcome], Outgoing]
"""The reply to a consumed message, given its outcome."""

_RECORD_RACE_ATTEMPTS = 3


def _record_raced(exc: asyncpg.UniqueViolationError) -> bool:
    """Another transaction recorded one of our orders after we read them (the key guards it)."""
    return exc.constraint_name == "order_payments_pkey"


async def _lock(
    conn: asyncpg.Connection,
    commands: Sequence[SagaCommand],
    consumer: str = "",
    message_ids: Sequence[uuid.UUID] = (),
) -> tuple[set[uuid.UUID], dict[str, Payment], dict[int, int]]:
    return await payments_db.claim_and_lock(
        conn,
        consumer,
        message_ids,
        [c.order_id for c in commands],
        [c.user_id for c in commands if isinstance(c, Deduct)],
    )


async def _apply_alone(conn: asyncpg.Connection, cmd: SagaCommand) -> SagaOutcome:
    _, records, balances = await _lock(conn, [cmd])
    settlement = settle([cmd], records, balances)
    await payments_db.write(conn, settlement, [])
    return settlement.outcomes[0]


async def deduct(uow: Connected, cmd: Deduct) -> DeductOutcome:
    """Take the order's amount at most once; a Deduct seen before gets the same answer."""
    outcome = await _apply_alone(uow.conn, cmd)
    assert not isinstance(outcome, Refunded)
    return outcome


async def refund(uow: Connected, cmd: Refund) -> Refunded:
    """Give back what the order took, once; fence an order that took nothing."""
    outcome = await _apply_alone(uow.conn, cmd)
    assert isinstance(outcome, Refunded)
    return outcome


async def _apply(
    pool: asyncpg.Pool, consumer: str, batch: Sequence[Incoming], command_of: CommandOf, reply_of: ReplyOf
) -> Settlement:
    """One transaction: the messages of ``batch`` new to ``consumer``'s inbox, applied in order."""
    commands = [command_of(item.message) for item in batch]
    async with UnitOfWork(pool) as uow:
        new, records, balances = await _lock(
            uow.conn, [c for c in commands if c is not None], consumer, [item.event_id for item in batch]
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
        await payments_db.write(uow.conn, settlement, replies)
        await uow.commit()
    return settlement


async def _apply_fresh(
    pool: asyncpg.Pool, consumer: str, batch: Sequence[Incoming], command_of: CommandOf, reply_of: ReplyOf
) -> None:
    """:func:`_apply`, again from the start when an order was recorded by another transaction
    meanwhile (a re-sent command handled by two instances around a rebalance): the new read
    sees that record and answers from it."""
    for attempt in range(_RECORD_RACE_ATTEMPTS):
        try:
            await _apply(pool, consumer, batch, command_of, reply_of)
            return
        except asyncpg.UniqueViolationError as exc:
            if not _record_raced(exc) or attempt == _RECORD_RACE_ATTEMPTS - 1:
                raise
            log.info("an order was recorded concurrently; applying the batch again", extra={"size": len(batch)})


async def apply_commands(
    pool: asyncpg.Pool, consumer: str, batch: Sequence[Incoming], command_of: CommandOf, reply_of: ReplyOf
) -> None:
    """Apply every message of ``batch`` not yet seen by ``consumer``, in order, exactly once: inbox
    claim, effects and replies in one transaction; one by one after a deadlock or serialization
    failure (as ``shared.db.consume.apply_batch``)."""
    await split_on_conflict(batch, lambda items: _apply_fresh(pool, consumer, items, command_of, reply_of))


async def release_completed(pool: asyncpg.Pool, order_ids: Sequence[str]) -> None:
    """These orders completed: the money their deductions took is kept for good and no longer
    counts toward the users' limit as held (a completed order is never refunded). One statement,
    idempotent (a record releases once), so a redelivered ``order.completed`` changes nothing."""
    async with SingleStatement(pool) as single:
        await payments_db.release_held(single.conn, order_ids)
