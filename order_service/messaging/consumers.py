"""Kafka consumers: saga replies (group ``order-saga``) and ``user.registered`` (``order-users``).

Each turns its records into what the service layer's handler takes and calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from order_service.domain.commands import RememberUser
from order_service.service import saga_runner
from order_service.service.deps import Deps
from order_service.service.ports import KnownUserRows
from order_service.service.users import remember_user
from shared.db.consume import apply_batch
from shared.db.uow import UnitOfWork
from shared.events.saga import SagaReply
from shared.events.users import UserRegistered
from shared.messaging.consumer import BatchHandler
from shared.messaging.envelope import Incoming

USERS_CONSUMER = "order-users"


def replies_handler(deps: Deps, retry_on: tuple[type[BaseException], ...]) -> BatchHandler:
    """One transaction per consumed batch of replies; retried whole (up to 5 times) on ``retry_on``
    (a deadlock or serialization failure)."""

    async def handle(batch: list[Incoming]) -> None:
        replies = [(item.event_id, item.message if isinstance(item.message, SagaReply) else None) for item in batch]
        for attempt in range(5):
            try:
                await saga_runner.apply_replies(deps, replies)
                return
            except retry_on:
                if attempt == 4:
                    raise

    return handle


def users_handler(pool: Any, users: Callable[[UnitOfWork], KnownUserRows]) -> BatchHandler:
    """``user.registered`` into the known users, exactly once (inbox), a batch per transaction."""

    async def apply_one(uow: UnitOfWork, item: Incoming) -> None:
        msg = item.message
        if isinstance(msg, UserRegistered):
            await remember_user(users(uow), RememberUser(msg.user_id, msg.name, msg.created_at))

    async def handle(batch: Sequence[Incoming]) -> None:
        await apply_batch(pool, USERS_CONSUMER, batch, apply_one)

    return handle
