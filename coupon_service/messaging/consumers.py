"""Consumers: a consumed record -> a command -> the same service handler as HTTP would call.

Each consumed batch applies in one transaction through the platform's pipeline
(``shared.messaging.pipeline``: inbox claim, effects, outbox, commit; one by one after a
deadlock), the saga step's transaction run again from a fresh read on a record race.
"""

from __future__ import annotations

from datetime import datetime

from coupon_service.bootstrap import Deps
from coupon_service.domain import saga as decisions
from coupon_service.domain.commands import Confirm, Release, Reserve
from coupon_service.service import saga
from coupon_service.service.ports import UnitOfWork
from shared.db.dead_letter_hooks import failure_reply_hook
from shared.db.dead_letters import DeadLetterHook
from shared.events.saga import (
    ConfirmCoupon,
    CouponConfirmed,
    CouponReleased,
    CouponReservationFailed,
    CouponReserved,
    ReleaseCoupon,
    ReserveCoupon,
    SagaReply,
)
from shared.known_users import users_handler as known_users_handler
from shared.messaging import topics
from shared.messaging.envelope import Incoming, Message
from shared.messaging.pipeline import BatchHandler, Pipeline

SAGA_GROUP = "coupon"
USERS_GROUP = "coupon-users"


def _reserved(message: ReserveCoupon, answer: decisions.OrderCoupon) -> SagaReply:
    if decisions.is_reserved(answer):
        assert answer.user_coupon_id is not None and answer.discount_amount is not None
        return CouponReserved(
            order_id=message.order_id,
            command_id=message.event_id,
            user_coupon_id=answer.user_coupon_id,
            discount_amount=answer.discount_amount,
        )
    return CouponReservationFailed(
        order_id=message.order_id,
        command_id=message.event_id,
        code=answer.failure_code or decisions.COUPON_UNAVAILABLE,
        reason=answer.failure_reason,
    )


async def answer(uow: UnitOfWork, message: Message, now: datetime) -> SagaReply | None:
    """Apply one saga command message in ``uow``; the reply to send (``None``: not ours)."""
    if isinstance(message, ReserveCoupon):
        cmd = Reserve(message.order_id, message.user_id, message.user_coupon_id, message.order_amount)
        return _reserved(message, await saga.reserve(uow, cmd, now))
    if isinstance(message, ConfirmCoupon):
        await saga.confirm(uow, Confirm(message.order_id), now)
        return CouponConfirmed(order_id=message.order_id, command_id=message.event_id)
    if isinstance(message, ReleaseCoupon):
        await saga.release(uow, Release(message.order_id), now)
        return CouponReleased(order_id=message.order_id, command_id=message.event_id)
    return None  # another participant's message: nothing to do


def saga_handler(deps: Deps) -> BatchHandler:
    """Apply coupon commands and queue each reply on ``saga.replies`` (key ``order_id``)."""
    replies = deps.topics(topics.SAGA_REPLIES)

    async def apply_one(uow: UnitOfWork, item: Incoming) -> None:
        reply = await answer(uow, item.message, deps.clock())
        if reply is not None:
            uow.publish(replies, reply.order_id, reply)

    pipeline = Pipeline(deps.uow, SAGA_GROUP, retry_if=deps.record_raced, retry_attempts=saga.RECORD_RACE_ATTEMPTS)
    return pipeline.each(apply_one)


def dead_letter_hook(deps: Deps) -> DeadLetterHook:
    """A set-aside ReserveCoupon fails its order (PROCESSING_FAILED); a ReleaseCoupon or
    ConfirmCoupon (after the outcome, nothing to answer) waits for a replay."""
    return failure_reply_hook(
        SAGA_GROUP,
        deps.topics(topics.SAGA_REPLIES),
        {ReserveCoupon: CouponReservationFailed},
        (ReleaseCoupon, ConfirmCoupon),
    )


def users_handler(deps: Deps) -> BatchHandler:
    """Project ``user.registered`` into ``known_users``: the shared projection's handler (the
    pipeline's inbox, then one statement for the batch's new users)."""
    return known_users_handler(deps.uow, USERS_GROUP)
