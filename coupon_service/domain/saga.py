"""The coupon step of the payment saga as pure decisions on an order's coupon record.

Per order (the business key) there is at most one :class:`OrderCoupon`. A command with a record
already in place is answered from the record and changes nothing more; a compensation for an
order without a record leaves a ``FENCED`` record, so a later reserve is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from coupon_service.domain.model import CouponTerms, UserCouponStatus

COUPON_UNAVAILABLE = "COUPON_UNAVAILABLE"
ALREADY_COMPENSATED = "ALREADY_COMPENSATED"


class OrderCouponState(StrEnum):
    RESERVED = "RESERVED"
    REFUSED = "REFUSED"
    CONFIRMED = "CONFIRMED"
    RELEASED = "RELEASED"
    FENCED = "FENCED"


@dataclass(frozen=True)
class OrderCoupon:
    """What the saga did with one order's coupon."""

    order_id: str
    state: OrderCouponState
    user_coupon_id: int | None = None
    discount_amount: int | None = None
    failure_code: str | None = None
    failure_reason: str = ""


@dataclass(frozen=True)
class Holding:
    """A user coupon as a reservation sees it."""

    user_coupon_id: int
    user_id: int | None
    status: str
    expires_at: datetime | None
    terms: CouponTerms


def _refuse(order_id: str, reason: str) -> OrderCoupon:
    return OrderCoupon(order_id, OrderCouponState.REFUSED, failure_code=COUPON_UNAVAILABLE, failure_reason=reason)


def _unusable_reason(holding: Holding | None, user_id: int, now: datetime) -> str | None:
    if holding is None or holding.user_id != user_id:
        return "the user does not hold this coupon"
    if holding.status != UserCouponStatus.AVAILABLE:
        return f"the coupon is {holding.status.lower()}"
    if holding.expires_at is None or holding.expires_at <= now:
        return "the coupon has expired"
    return None


def decide_reserve(
    order_id: str, user_id: int, order_amount: int, holding: Holding | None, now: datetime
) -> OrderCoupon:
    """A first reserve for the order: ``RESERVED`` with the discount, or ``REFUSED``."""
    reason = _unusable_reason(holding, user_id, now)
    if reason is not None:
        return _refuse(order_id, reason)
    assert holding is not None
    discount = holding.terms.discount(order_amount)
    if discount is None:
        return _refuse(order_id, f"the order is below the minimum of {holding.terms.min_order_amount}")
    return OrderCoupon(order_id, OrderCouponState.RESERVED, holding.user_coupon_id, discount)


def reserve_answer(record: OrderCoupon) -> OrderCoupon:
    """How a reserve is answered given the order's record (re-sent or after compensation)."""
    if record.state in (OrderCouponState.RELEASED, OrderCouponState.FENCED):
        return replace(record, failure_code=ALREADY_COMPENSATED, failure_reason="the order was compensated")
    return record


def confirm(record: OrderCoupon | None) -> OrderCoupon | None:
    """The record after a confirm, or ``None`` when nothing changes."""
    if record is not None and record.state is OrderCouponState.RESERVED:
        return replace(record, state=OrderCouponState.CONFIRMED)
    return None


def release(order_id: str, record: OrderCoupon | None) -> OrderCoupon | None:
    """The record after a release (``RELEASED``, or ``FENCED`` when never reserved), else ``None``."""
    if record is None:
        return OrderCoupon(order_id, OrderCouponState.FENCED)
    if record.state is OrderCouponState.RESERVED:
        return replace(record, state=OrderCouponState.RELEASED)
    return None


def is_reserved(record: OrderCoupon) -> bool:
    """Whether the answer to a reserve is a success."""
    return record.state in (OrderCouponState.RESERVED, OrderCouponState.CONFIRMED) and record.failure_code is None
