"""Deprecated: the consumer pipeline is :mod:`shared.messaging.pipeline`. Kept importable (thin
re-exports) until every service has moved; then removed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from shared.db.uow import UnitOfWork
from shared.messaging.envelope import Incoming
from shared.messaging.pipeline import Pipeline, message_context, split_on_conflict

ApplyOne = Callable[[UnitOfWork[None], Incoming], Awaitable[None]]


async def apply_batch(pool: asyncpg.Pool, consumer: str, batch: Sequence[Incoming], apply_one: ApplyOne) -> None:
    """Apply every message of ``batch`` not yet seen by ``consumer``, in order, exactly once
    (``Pipeline(lambda: UnitOfWork(pool), consumer).apply_each(batch, apply_one)``)."""
    await Pipeline(lambda: UnitOfWork(pool), consumer).apply_each(batch, apply_one)


__all__ = ["ApplyOne", "apply_batch", "message_context", "split_on_conflict"]
