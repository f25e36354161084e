"""Coupons and user coupons as plain values, with the rules that decide on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from coupon_service.domain.errors import InvalidCouponError

MAX_QUANTITY = 100_000
"""Copies of one coupon: each is a row written at creation, which must finish well within the
gateway's timeout (1,000,000 took about 10 s on a loaded 2-core machine; 100,000 about 1.5 s)."""


class DiscountType(StrEnum):
    FIXED = "FIXED"
    RATE = "RATE"


class CouponStatus(StrEnum):
    ISSUABLE = "ISSUABLE"
    SOLD_OUT = "SOLD_OUT"
    NOT_STARTED = "NOT_STARTED"
    ENDED = "ENDED"


class UserCouponStatus(StrEnum):
    AVAILABLE = "AVAILABLE"
    RESERVED = "RESERVED"
    USED = "USED"
    EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class CouponTerms:
    """What a coupon gives and when it can be issued; immutable once created."""

    name: str
    discount_type: DiscountType
    discount_value: int
    total_quantity: int
    valid_days: int
    min_order_amount: int = 0
    issue_starts_at: datetime | None = None
    issue_ends_at: datetime | None = None

    def validate(self) -> None:
        """Raise :class:`InvalidCouponError` for the first broken rule."""
        if self.discount_type is DiscountType.RATE and not 1 <= self.discount_value <= 100:
            raise InvalidCouponError("discount_value", "a RATE discount must be within 1..100")
        if self.discount_type is DiscountType.FIXED and self.discount_value < 1:
            raise InvalidCouponError("discount_value", "a FIXED discount must be at least 1")
        if not 1 <= self.total_quantity <= MAX_QUANTITY:
            raise InvalidCouponError("total_quantity", f"must be within 1..{MAX_QUANTITY}")
        if self.valid_days < 1:
            raise InvalidCouponError("valid_days", "must be at least 1")
        if self.min_order_amount < 0:
            raise InvalidCouponError("min_order_amount", "must not be negative")
        starts, ends = self.issue_starts_at, self.issue_ends_at
        if starts is not None and ends is not None and starts >= ends:
            raise InvalidCouponError("issue_ends_at", "must be after issue_starts_at")

    def window_status(self, now: datetime) -> CouponStatus | None:
        """``NOT_STARTED`` / ``ENDED`` outside the issue window, else ``None``."""
        if self.issue_starts_at is not None and now < self.issue_starts_at:
            return CouponStatus.NOT_STARTED
        if self.issue_ends_at is not None and now >= self.issue_ends_at:
            return CouponStatus.ENDED
        return None

    def status(self, now: datetime, issued: int) -> CouponStatus:
        """The coupon's status as ``GET /coupons/{id}`` shows it."""
        window = self.window_status(now)
        if window is not None:
            return window
        return CouponStatus.SOLD_OUT if issued >= self.total_quantity else CouponStatus.ISSUABLE

    def discount(self, order_amount: int) -> int | None:
        """The discount on ``order_amount``, or ``None`` when the order is below the minimum."""
        if order_amount < self.min_order_amount:
            return None
        if self.discount_type is DiscountType.FIXED:
            amount = self.discount_value
        else:
            amount = order_amount * self.discount_value // 100
        return max(0, min(amount, order_amount))

    def expiry(self, issued_at: datetime) -> datetime:
        return issued_at + timedelta(days=self.valid_days)


@dataclass(frozen=True)
class Coupon:
    """A stored coupon: its id and terms."""

    coupon_id: int
    terms: CouponTerms
    created_at: datetime


@dataclass(frozen=True)
class IssuedCoupon:
    """A copy just issued to a user."""

    user_coupon_id: int
    coupon_id: int
    user_id: int
    status: str
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Claimant:
    """A user of a batched issue as the batch's statement saw them: ``known`` (the known-users
    projection holds them), ``held`` (they already held a copy), the ``copy`` the statement gave
    them, and ``more_free`` (a free copy was left that the statement did not take)."""

    user_id: int
    known: bool
    held: bool
    copy: IssuedCoupon | None = None
    more_free: bool = False


@dataclass(frozen=True)
class OwnedCoupon:
    """One of a user's coupons with its coupon's terms, as stored (``status`` not yet derived)."""

    user_coupon_id: int
    coupon_id: int
    name: str
    discount_type: str
    discount_value: int
    status: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None


def user_coupon_status(stored: str, expires_at: datetime, now: datetime) -> UserCouponStatus:
    """An owned coupon's visible status: an unused, unreserved coupon past its expiry is ``EXPIRED``."""
    if stored == UserCouponStatus.AVAILABLE and expires_at <= now:
        return UserCouponStatus.EXPIRED
    return UserCouponStatus(stored)
