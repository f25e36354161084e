"""The coupon step of the payment saga: reserve, confirm, release (one order at a time)."""

from __future__ import annotations

from datetime import datetime

from coupon_service.db import saga as repo
from coupon_service.domain import saga
from coupon_service.domain.saga import OrderCoupon
from shared.db.uow import UnitOfWork
from shared.events.saga import (
    ConfirmCoupon, CouponConfirmed, CouponReleased, CouponReservationFailed, CouponReserved, ReleaseCoupon,
    ReserveCoupon, SagaCommand, SagaReply,
)


async def reserve(uow: UnitOfWork, cmd: ReserveCoupon, now: datetime) -> SagaReply:
    """Reserve the coupon for the order, or answer from what was already decided for it."""
    record = await repo.lock_record(uow.conn, cmd.order_id)
    if record is None:
        holding = await repo.lock_holding(uow.conn, cmd.user_coupon_id)
        record = saga.decide_reserve(cmd.order_id, cmd.user_id, cmd.order_amount, holding, now)
        if saga.is_reserved(record) and not await repo.mark_reserved(uow.conn, cmd.user_coupon_id, cmd.order_id):
            record = saga.decide_reserve(cmd.order_id, cmd.user_id, cmd.order_amount, None, now)
        await repo.save_record(uow.conn, record)
    return _reserve_reply(cmd, saga.reserve_answer(record))


def _reserve_reply(cmd: SagaCommand, record: OrderCoupon) -> SagaReply:
    if saga.is_reserved(record):
        assert record.user_coupon_id is not None and record.discount_amount is not None
        return CouponReserved(
            order_id=cmd.order_id, command_id=cmd.event_id,
            user_coupon_id=record.user_coupon_id, discount_amount=record.discount_amount,
        )
    return CouponReservationFailed(
        order_id=cmd.order_id, command_id=cmd.event_id,
        code=record.failure_code or saga.COUPON_UNAVAILABLE, reason=record.failure_reason,
    )


async def confirm(uow: UnitOfWork, cmd: ConfirmCoupon, now: datetime) -> SagaReply:
    """Mark the order's reserved coupon used; a repeat changes nothing."""
    record = await repo.lock_record(uow.conn, cmd.order_id)
    changed = saga.confirm(record)
    if changed is not None:
        assert changed.user_coupon_id is not None
        await repo.mark_used(uow.conn, changed.user_coupon_id, cmd.order_id, now)
        await repo.save_record(uow.conn, changed)
    return CouponConfirmed(order_id=cmd.order_id, command_id=cmd.event_id)


async def release(uow: UnitOfWork, cmd: ReleaseCoupon, now: datetime) -> SagaReply:
    """Make the order's coupon available again; fence an order that never reserved one."""
    record = await repo.lock_record(uow.conn, cmd.order_id)
    changed = saga.release(cmd.order_id, record)
    if changed is not None:
        if changed.user_coupon_id is not None:
            await repo.mark_available(uow.conn, changed.user_coupon_id, cmd.order_id)
        await repo.save_record(uow.conn, changed)
    return CouponReleased(order_id=cmd.order_id, command_id=cmd.event_id)


HANDLERS = {ReserveCoupon: reserve, ConfirmCoupon: confirm, ReleaseCoupon: release}
