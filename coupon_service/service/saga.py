"""The coupon step of the payment saga: reserve, confirm, release (one order at a time).

A reserve *uses* the coupon at once (``USED`` with ``used_at``), as the original design's "use
coupon" step: when the order completes the coupon already reads ``USED``, with no extra saga hop;
another order cannot take it meanwhile; a release (compensation) makes it ``AVAILABLE`` again.
The order's record (``order_coupons``) is inserted once, never overwritten: a second transaction
handling the same order fails on its key and its batch is applied again from a fresh read (the
consumer pipeline's ``retry_if``, up to :data:`RECORD_RACE_ATTEMPTS` transactions).

The handlers run inside the consumer's batch transaction (``uow``) and return what to answer;
``messaging.consumers`` turns that into the reply message.
"""

from __future__ import annotations

from datetime import datetime

from coupon_service.domain import saga
from coupon_service.domain.commands import Confirm, Release, Reserve
from coupon_service.domain.saga import OrderCoupon
from coupon_service.service.ports import UnitOfWork


async def reserve(uow: UnitOfWork, cmd: Reserve, now: datetime) -> OrderCoupon:
    """Reserve the coupon for the order, or answer from what was already decided for it: the
    record to answer with (:func:`coupon_service.domain.saga.is_reserved` tells success)."""
    orders = uow.orders
    record = await orders.lock_record(cmd.order_id)
    if record is None:
        holding = await orders.lock_holding(cmd.user_coupon_id)
        record = saga.decide_reserve(cmd.order_id, cmd.user_id, cmd.order_amount, holding, now)
        if saga.is_reserved(record) and not await orders.mark_taken(cmd.user_coupon_id, cmd.order_id, now):
            record = saga.decide_reserve(cmd.order_id, cmd.user_id, cmd.order_amount, None, now)
        await orders.insert_record(record)
    return saga.reserve_answer(record)


async def confirm(uow: UnitOfWork, cmd: Confirm, now: datetime) -> None:
    """Close the order's record (its coupon is already used; one reserved before coupons were used
    at once becomes used now); a repeat changes nothing."""
    record = await uow.orders.lock_record(cmd.order_id)
    changed = saga.confirm(record)
    if changed is not None:
        assert changed.user_coupon_id is not None
        await uow.orders.mark_used(changed.user_coupon_id, cmd.order_id, now)
        await uow.orders.update_state(changed)


async def release(uow: UnitOfWork, cmd: Release, now: datetime) -> None:
    """Make the order's coupon available again; fence an order that never reserved one."""
    record = await uow.orders.lock_record(cmd.order_id)
    changed = saga.release(cmd.order_id, record)
    if changed is not None:
        if changed.user_coupon_id is not None:
            await uow.orders.mark_available(changed.user_coupon_id, cmd.order_id)
        if record is None:
            await uow.orders.insert_record(changed)
        else:
            await uow.orders.update_state(changed)


RECORD_RACE_ATTEMPTS = 3
"""Transactions a saga batch gets when another transaction records one of its orders meanwhile."""
