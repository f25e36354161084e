"""Batch handlers: each consumed batch applies in one transaction through ``apply_batch``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from coupon_service.service import saga
from coupon_service.service.users import project_registered
from shared.db.consume import apply_batch
from shared.db.dead_letter_hooks import failure_reply_hook
from shared.db.dead_letters import DeadLetterHook
from shared.db.uow import UnitOfWork
from shared.events.saga import ConfirmCoupon, CouponReservationFailed, ReleaseCoupon, ReserveCoupon
from shared.events.users import UserRegistered
from shared.messaging import topics
from shared.messaging.envelope import Incoming, utcnow
from shared.messaging.topics import Topics

SAGA_GROUP = "coupon"
USERS_GROUP = "coupon-users"

BatchHandler = Callable[[list[Incoming]], Awaitable[None]]


def saga_handler(pool: asyncpg.Pool, names: Topics) -> BatchHandler:
    """Apply coupon commands and queue each reply on ``saga.replies`` (key ``order_id``)."""
    replies = names(topics.SAGA_REPLIES)

    async def apply_one(uow: UnitOfWork, item: Incoming) -> None:
        handler = saga.HANDLERS.get(type(item.message))  # type: ignore[call-overload]
        if handler is None:
            return  # another participant's message: nothing to do
        reply = await handler(uow, item.message, utcnow())
        uow.publish(replies, reply.order_id, reply)

    async def handle(batch: list[Incoming]) -> None:
        await saga.apply_commands(pool, SAGA_GROUP, batch, apply_one)

    return handle


def dead_letter_hook(names: Topics) -> DeadLetterHook:
    """A set-aside ReserveCoupon fails its order (PROCESSING_FAILED); a ReleaseCoupon or
    ConfirmCoupon (after the outcome, nothing to answer) waits for a replay."""
    return failure_reply_hook(
        SAGA_GROUP,
        names(topics.SAGA_REPLIES),
        {ReserveCoupon: CouponReservationFailed},
        (ReleaseCoupon, ConfirmCoupon),
    )


def users_handler(pool: asyncpg.Pool) -> BatchHandler:
    """Project ``UserRegistered`` into ``known_users``."""

    async def apply_one(uow: UnitOfWork, item: Incoming) -> None:
        msg = item.message
        if isinstance(msg, UserRegistered):
            await project_registered(uow.conn, msg.user_id, msg.name, msg.created_at)

    async def handle(batch: list[Incoming]) -> None:
        await apply_batch(pool, USERS_GROUP, batch, apply_one)

    return handle
