"""The public order events of ``docs/events.md`` (published by order_service).

Integrators rely on these: change them only compatibly (new optional fields), or bump the
version and publish both.
"""

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.messaging.envelope import Message

FAILURE_CODES = (
    "INSUFFICIENT_BALANCE",
    "OUT_OF_STOCK",
    "COUPON_UNAVAILABLE",
    "PRODUCT_NOT_SELLABLE",
    "PAYMENT_TIMEOUT",
    "PROCESSING_FAILED",
)
"""The failure codes of the contract, declared as the schemas' enum. The model keeps ``str``: a
code added later must not make an event unpublishable; the enum tells integrators what exists."""


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
    failure_code: str = Field(json_schema_extra={"enum": list(FAILURE_CODES)})
    failed_at: datetime


MESSAGES = (OrderCompleted, OrderFailed)
PUBLIC_TOPICS: dict[str, type[Message]] = {"order.completed": OrderCompleted, "order.failed": OrderFailed}
