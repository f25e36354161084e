"""Opaque page cursors: the last item's (time, order_id) (orders by creation, sagas by start), in
the grammar of :mod:`shared.web.cursors`."""

from __future__ import annotations

from datetime import datetime

from order_service.domain.order import Order
from shared.web.cursors import MOMENT, UUID, Cursor
from shared.web.problems import ValidationProblem

ORDERS = Cursor("o", MOMENT, UUID)


def encode(order: Order) -> str:
    return encode_key(order.created_at, order.order_id)


def encode_key(moment: datetime, order_id: str) -> str:
    """A cursor after ``(moment, order_id)`` (orders by creation, sagas by start)."""
    return ORDERS.encode(moment, order_id)


def decode(cursor: str) -> tuple[datetime, str]:
    try:
        moment, order_id = ORDERS.decode(cursor)
    except ValueError:
        raise ValidationProblem([{"field": "cursor", "message": "malformed cursor"}]) from None
    return moment, order_id
