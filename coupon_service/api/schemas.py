"""Request and response models of the public coupon routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.web.validation import Id


class CreateCoupon(BaseModel):
    """A new first-come-first-served coupon."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    discount_type: Literal["FIXED", "RATE"]
    discount_value: int = Field(ge=1, description="won off (FIXED, >= 1) or percent (RATE, 1..100)")
    total_quantity: int = Field(ge=1, le=1_000_000)
    issue_starts_at: AwareDatetime | None = None
    issue_ends_at: AwareDatetime | None = None
    valid_days: int = Field(ge=1, le=3650)
    min_order_amount: int = Field(default=0, ge=0)


class CouponOut(BaseModel):
    """A coupon with its issue counts and status."""

    coupon_id: int
    name: str
    discount_type: Literal["FIXED", "RATE"]
    discount_value: int
    total_quantity: int
    issued_quantity: int
    remaining_quantity: int
    status: Literal["ISSUABLE", "SOLD_OUT", "NOT_STARTED", "ENDED"]
    issue_starts_at: str | None
    issue_ends_at: str | None
    valid_days: int
    min_order_amount: int
    created_at: str


class IssueCoupon(BaseModel):
    """Who asks for a copy."""

    model_config = ConfigDict(extra="forbid")

    user_id: Id


class IssuedOut(BaseModel):
    """The copy issued to the user."""

    user_coupon_id: int
    coupon_id: int
    user_id: int
    status: Literal["AVAILABLE"]
    issued_at: str
    expires_at: str


class OwnedQuery(BaseModel):
    """``status``: usable coupons only (``AVAILABLE``, default) or every coupon (``ALL``)."""

    status: Literal["AVAILABLE", "ALL"] = "AVAILABLE"
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=200)


class OwnedCouponOut(BaseModel):
    """One of the user's coupons."""

    user_coupon_id: int
    coupon_id: int
    name: str
    discount_type: Literal["FIXED", "RATE"]
    discount_value: int
    status: Annotated[Literal["AVAILABLE", "RESERVED", "USED", "EXPIRED"], Field(
        description="USED from the moment an order takes the coupon; AVAILABLE again if that order fails")]
    issued_at: str
    expires_at: str
    used_at: str | None = Field(description="when an order took the coupon (null unless USED)")


class OwnedPage(BaseModel):
    """A page of the user's coupons, newest issue first."""

    items: list[OwnedCouponOut]
    next_cursor: str | None
