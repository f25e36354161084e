"""Request and response models of the public coupon routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from coupon_service.api.cursor import OWNED
from coupon_service.domain.model import MAX_QUANTITY
from shared.web.validation import MAX_INT64, Id, Int64, Moment, text


class CreateCoupon(BaseModel):
    """A new first-come-first-served coupon.

    When both ``issue_starts_at`` and ``issue_ends_at`` are given, ``issue_starts_at`` must be
    earlier than ``issue_ends_at`` (else ``400 VALIDATION_ERROR``); a ``RATE`` discount_value is a
    percentage within 1..100 (declared by the ``anyOf``). ``total_quantity`` is at most 100,000:
    every copy is a row made when the coupon is created, within the gateway's timeout.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"properties": {"discount_type": {"enum": ["FIXED"]}}},
                {"properties": {"discount_type": {"enum": ["RATE"]}, "discount_value": {"maximum": 100}}},
            ]
        },
    )

    name: text(1, 100)  # type: ignore[valid-type]
    discount_type: Literal["FIXED", "RATE"]
    discount_value: int = Field(ge=1, le=MAX_INT64, description="won off (FIXED, >= 1) or percent (RATE, 1..100)")
    total_quantity: int = Field(ge=1, le=MAX_QUANTITY)
    issue_starts_at: Moment | None = Field(default=None, description="earlier than issue_ends_at")
    issue_ends_at: Moment | None = Field(default=None, description="later than issue_starts_at")
    valid_days: int = Field(ge=1, le=3650)
    min_order_amount: Int64 = 0


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
    cursor: str | None = Field(default=None, pattern=OWNED.pattern, description="next_cursor of the previous page")


class OwnedCouponOut(BaseModel):
    """One of the user's coupons."""

    user_coupon_id: int
    coupon_id: int
    name: str
    discount_type: Literal["FIXED", "RATE"]
    discount_value: int
    status: Annotated[
        Literal["AVAILABLE", "RESERVED", "USED", "EXPIRED"],
        Field(description="USED from the moment an order takes the coupon; AVAILABLE again if that order fails"),
    ]
    issued_at: str
    expires_at: str
    used_at: str | None = Field(description="when an order took the coupon (null unless USED)")


class OwnedPage(BaseModel):
    """A page of the user's coupons, newest issue first."""

    items: list[OwnedCouponOut]
    next_cursor: str | None
