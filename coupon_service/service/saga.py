"""The coupon step of the payment saga: reserve, confirm, release (one order at a time).

A reserve *uses* the coupon at once (``USED`` with ``used_at``), as the original design's "use
coupon" step: when the order completes the coupon already reads ``USED``, with no extra saga hop;
another order cannot take it meanwhile; a release (compensation) makes it ``AVAILABLE`` again.
The order's record (``order_coupons``) is inserted once, never overwritten: a second transaction
handling the same order fails on its key and applies its batch again (:func:`apply_commands`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import asyncpg

from coupon_service.db import saga as repo
from coupon_service.domain import saga
from coupon_service.domain.saga import OrderCoupon
from shared.db.consume import ApplyOne, apply_batch
from shared.db.uow import UnitOfWork
from shared.events.saga import (
    ConfirmCoupon,
    CouponConfirmed,
    CouponReleased,
    CouponReservationFailed,
    CouponReserved,
    ReleaseCoupon,
    ReserveCoupon,
    SagaCommand,
    SagaReply,
)
from shared.messaging.envelope import Incoming

log = logging.getLogger(__name__)


async def reserve(uow: UnitOfWork, cmd: ReserveCoupon, now: datetime) -> SagaReply:
    """Reserve the coupon for the order, or answer from what was already decided for it."""
    record = await repo.lock_record(uow.conn, cmd.order_id)
    if record is None:
        holding = await repo.lock_holding(uow.conn, cmd.user_coupon_id)
        record = saga.decide_reserve(cmd.order_id, cmd.user_id, cmd.order_amount, holding, now)
        if saga.is_reserved(record) and not await repo.mark_taken(uow.conn, cmd.user_coupon_id, cmd.order_id, now):
            record = saga.decide_reserve(cmd.order_id, cmd.user_id, cmd.order_amount, None, now)
        await repo.insert_record(uow.conn, record)
    return _reserve_reply(cmd, saga.reserve_answer(record))


def _reserve_reply(cmd: SagaCommand, record: OrderCoupon) -> SagaReply:
    if saga.is_reserved(record):
        assert record.user_coupon_id is not None and record.discount_amount is not None
        return CouponReserved(
            order_id=cmd.order_id,
            command_id=cmd.event_id,
            user_coupon_id=record.user_coupon_id,
            discount_amount=record.discount_amount,
        )
    return CouponReservationFailed(
        order_id=cmd.order_id,
        command_id=cmd.event_id,
        code=record.failure_code or saga.COUPON_UNAVAILABLE,
        reason=record.failure_reason,
    )


async def confirm(uow: UnitOfWork, cmd: ConfirmCoupon, now: datetime) -> SagaReply:
    """Close the order's record (its coupon is already used; one reserved before coupons were used
    at once becomes used now); a repeat changes nothing."""
    record = await repo.lock_record(uow.conn, cmd.order_id)
    changed = saga.confirm(record)
    if changed is not None:
        assert changed.user_coupon_id is not None
        await repo.mark_used(uow.conn, changed.user_coupon_id, cmd.order_id, now)
        await repo.update_state(uow.conn, changed)
    return CouponConfirmed(order_id=cmd.order_id, command_id=cmd.event_id)


async def release(uow: UnitOfWork, cmd: ReleaseCoupon, now: datetime) -> SagaReply:
    """Make the order's coupon available again; fence an order that never reserved one."""
    record = await repo.lock_record(uow.conn, cmd.order_id)
    changed = saga.release(cmd.order_id, record)
    if changed is not None:
        if changed.user_coupon_id is not None:
            await repo.mark_available(uow.conn, changed.user_coupon_id, cmd.order_id)
        if record is None:
            await repo.insert_record(uow.conn, changed)
        else:
            await repo.update_state(uow.conn, changed)
    return CouponReleased(order_id=cmd.order_id, command_id=cmd.event_id)


HANDLERS = {ReserveCoupon: reserve, ConfirmCoupon: confirm, ReleaseCoupon: release}

_RECORD_RACE_ATTEMPTS = 3


async def retry_record_race(apply: Callable[[], Awaitable[None]]) -> None:
    """``await apply()`` (one transaction), again from the start when another transaction recorded
    one of its orders after it read them: the fresh read sees that record and answers from it."""
    for attempt in range(_RECORD_RACE_ATTEMPTS):
        try:
            await apply()
            return
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "order_coupons_pkey" or attempt == _RECORD_RACE_ATTEMPTS - 1:
                raise
            log.info("an order was recorded concurrently; applying the batch again")


async def apply_commands(pool: asyncpg.Pool, consumer: str, batch: Sequence[Incoming], apply_one: ApplyOne) -> None:
    """``apply_batch`` of the saga commands, retried on a record race (as balance and catalog)."""
    await retry_record_race(lambda: apply_batch(pool, consumer, batch, apply_one))
