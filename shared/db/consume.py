"""Applying a consumed batch exactly once: inbox and effects in one transaction.

The whole batch commits as one transaction (one round trip for the inbox, one commit). When that
transaction fails on a deadlock or serialization conflict, each message is retried in its own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence

import asyncpg

from shared.context import request_id_var
from shared.db.inbox import claim_new
from shared.db.uow import UnitOfWork
from shared.messaging.envelope import Incoming

log = logging.getLogger(__name__)

ApplyOne = Callable[[UnitOfWork, Incoming], Awaitable[None]]
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


@contextlib.contextmanager
def message_context(item: Incoming) -> Iterator[None]:
    """Run with the request id of the message, so logs and replies carry it on."""
    token = request_id_var.set(item.request_id)
    try:
        yield
    finally:
        request_id_var.reset(token)


async def _apply(pool: asyncpg.Pool, consumer: str, batch: Sequence[Incoming], apply_one: ApplyOne) -> None:
    async with UnitOfWork(pool) as uow:
        new = await claim_new(uow.conn, consumer, [item.event_id for item in batch])
        for item in batch:
            if item.event_id not in new:
                continue
            new.discard(item.event_id)  # a duplicate inside the same batch applies once
            with message_context(item):
                await apply_one(uow, item)
        await uow.commit()


async def split_on_conflict(
    batch: Sequence[Incoming], apply: Callable[[Sequence[Incoming]], Awaitable[object]], attempts: int = 5
) -> None:
    """``await apply(batch)`` (one transaction); when that fails on a deadlock or a serialization
    conflict, apply each message alone, in order, each retried up to ``attempts`` times.

    For consumers that apply a whole batch at once in their own way (one statement for many
    messages) and want the same fallback as :func:`apply_batch`.
    """
    try:
        await apply(batch)
    except _RETRYABLE as exc:
        log.info("batch conflicted; applying one by one", extra={"error": repr(exc), "size": len(batch)})
        for item in batch:
            for attempt in range(attempts):
                try:
                    await apply([item])
                    break
                except _RETRYABLE:
                    if attempt == attempts - 1:
                        raise


async def apply_batch(pool: asyncpg.Pool, consumer: str, batch: Sequence[Incoming], apply_one: ApplyOne) -> None:
    """Apply every message of ``batch`` not yet seen by ``consumer``, in order, exactly once."""
    await split_on_conflict(batch, lambda items: _apply(pool, consumer, items, apply_one))
