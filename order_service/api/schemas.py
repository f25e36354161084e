"""Request and response models of the public order routes (also the OpenAPI schemas)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from order_service.domain.order import Order
from shared.events.orders import FAILURE_CODES
from shared.messaging.envelope import rfc3339
from shared.web.cursors import MOMENT, UUID, Cursor
from shared.web.validation import Id

ORDERS = Cursor("o", MOMENT, UUID)
"""Page cursors of orders (by creation) and sagas (by start): the last item's (time, order id)."""


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: Id
    quantity: Annotated[int, Field(ge=1, le=1000)]


class PlaceOrderRequest(BaseModel):
    """An order: 1..50 lines of distinct products; ``user_coupon_id`` optional."""

    model_config = ConfigDict(extra="forbid")

    user_id: Id
    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=50)]
    user_coupon_id: Id | None = None

    @field_validator("items")
    @classmethod
    def _distinct(cls, items: list[OrderItemIn]) -> list[OrderItemIn]:
        if len({item.product_id for item in items}) != len(items):
            raise ValueError("each product may appear at most once")
        return items


class OrderItemOut(BaseModel):
    product_id: int
    name: str
    unit_price: int
    quantity: int
    line_total: int


class OrderOut(BaseModel):
    """An order. ``discount_amount`` and ``paid_amount`` are what the completed payment applied and
    kept: 0 while PENDING and on a FAILED order (its payment was refunded, its coupon given back).
    ``failure_code`` is set when FAILED; ``completed_at`` when COMPLETED."""

    order_id: str
    user_id: int
    status: Literal["PENDING", "COMPLETED", "FAILED"]
    items: list[OrderItemOut]
    total_amount: int
    discount_amount: Annotated[
        int, Field(description="applied and kept by the completed payment; 0 while PENDING and on a FAILED order")
    ]
    paid_amount: Annotated[
        int, Field(description="taken from the balance and kept; 0 while PENDING and on a FAILED order (refunded)")
    ]
    user_coupon_id: int | None
    failure_code: str | None = Field(json_schema_extra={"enum": [*FAILURE_CODES, None]})
    created_at: str
    completed_at: str | None

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(
            order_id=order.order_id,
            user_id=order.user_id,
            status=order.status.value,
            items=[
                OrderItemOut(
                    product_id=ln.product_id,
                    name=ln.name,
                    unit_price=ln.unit_price,
                    quantity=ln.quantity,
                    line_total=ln.line_total,
                )
                for ln in order.lines
            ],
            total_amount=order.total_amount,
            discount_amount=order.discount_amount,
            paid_amount=order.paid_amount,
            user_coupon_id=order.user_coupon_id,
            failure_code=order.failure_code,
            created_at=rfc3339(order.created_at),
            completed_at=rfc3339(order.completed_at) if order.completed_at else None,
        )


class OrderPage(BaseModel):
    """A page of a user's orders, newest first."""

    items: list[OrderOut]
    next_cursor: str | None


class PageQuery(BaseModel):
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: str | None = Field(default=None, pattern=ORDERS.pattern, description="next_cursor of the previous page")
