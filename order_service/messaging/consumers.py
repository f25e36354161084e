"""Kafka consumers: saga replies (group ``order-saga``) and ``user.registered`` (``order-users``)."""

from __future__ import annotations

import asyncpg

from order_service.service import saga_runner
from order_service.service.users import user_registered
from shared.db.consume import apply_batch
from shared.db.uow import UnitOfWork
from shared.events.users import UserRegistered
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming

USERS_CONSUMER = "order-users"
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


def replies_handler(ctx: saga_runner.SagaContext) -> BatchHandler:
    """One transaction per consumed batch of replies; retried whole on a deadlock."""

    async def handle(batch: list[Incoming]) -> None:
        for attempt in range(5):
            try:
                await saga_runner.apply_replies(ctx, batch)
                return
            except _RETRYABLE:
                if attempt == 4:
                    raise

    return handle


def users_handler(pool: asyncpg.Pool) -> BatchHandler:
    async def apply_one(uow: UnitOfWork, item: Incoming) -> None:
        msg = item.message
        if isinstance(msg, UserRegistered):
            await user_registered(uow, msg.user_id, msg.name, msg.created_at)

    async def handle(batch: list[Incoming]) -> None:
        await apply_batch(pool, USERS_CONSUMER, batch, apply_one)

    return handle
