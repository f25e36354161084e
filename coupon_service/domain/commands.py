"""Commands of the coupon context: what HTTP views and Kafka consumers ask the service layer.

Each is named as its use case (the handler and the view share the name: ``create_coupon``,
``get_coupon``, ``issue_coupon``, ``user_coupons``; the saga step's ``reserve``, ``confirm``,
``release``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from coupon_service.domain.model import CouponTerms


@dataclass(frozen=True)
class CreateCoupon:
    terms: CouponTerms


@dataclass(frozen=True)
class GetCoupon:
    coupon_id: int


@dataclass(frozen=True)
class IssueCoupon:
    """One copy of the coupon for the user, first come, first served."""

    coupon_id: int
    user_id: int
    now: datetime


@dataclass(frozen=True)
class UserCoupons:
    """A page of the user's coupons after the keyset position ``after`` (issued_at, user_coupon_id)."""

    user_id: int
    show_all: bool
    after: tuple[datetime, int] | None
    limit: int
    now: datetime


@dataclass(frozen=True)
class Reserve:
    """Take the user's coupon for the order (the saga's forward step)."""

    order_id: str
    user_id: int
    user_coupon_id: int
    order_amount: int


@dataclass(frozen=True)
class Confirm:
    """The order completed: close its coupon record."""

    order_id: str


@dataclass(frozen=True)
class Release:
    """The order failed: give its coupon back (compensation)."""

    order_id: str


SagaCommand = Reserve | Confirm | Release
