"""The public order events of ``../shared/contract/EVENTS.md`` (published by order_service).

Integrators rely on these: change them only compatibly (new optional fields), or bump the
version and publish both.
"""

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from shared.messaging.envelope import Message


class OrderCompletedItem(BaseModel):
    """One line of a completed order."""

    model_config = ConfigDict(frozen=True)

    product_id: int
    name: str
    unit_price: int
    quantity: int


class OrderCompleted(Message):
    """An order's payment saga completed. Topic ``order.completed``, key ``order_id``."""

    event_type: ClassVar[str] = "OrderCompleted"

    order_id: str
    user_id: int
    items: list[OrderCompletedItem]
    total_amount: int
    discount_amount: int
    paid_amount: int
    user_coupon_id: int | None
    completed_at: datetime


class OrderFailed(Message):
    """An order's saga failed and every effect was undone. Topic ``order.failed``, key ``order_id``."""

    event_type: ClassVar[str] = "OrderFailed"

    order_id: str
    user_id: int
    failure_code: str
    failed_at: datetime


MESSAGES = (OrderCompleted, OrderFailed)
PUBLIC_TOPICS = {"order.completed": OrderCompleted, "order.failed": OrderFailed}
