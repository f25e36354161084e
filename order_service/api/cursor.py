"""Opaque page cursors: the last order's (created_at, order_id), in the grammar of
:mod:`shared.web.cursors`."""

from __future__ import annotations

from datetime import datetime

from order_service.domain.order import Order
from shared.web.cursors import MOMENT, UUID, Cursor
from shared.web.problems import ValidationProblem

ORDERS = Cursor("o", MOMENT, UUID)


def encode(order: Order) -> str:
    return ORDERS.encode(order.created_at, order.order_id)


def decode(cursor: str) -> tuple[datetime, str]:
    try:
        moment, order_id = ORDERS.decode(cursor)
    except ValueError:
        raise ValidationProblem([{"field": "cursor", "message": "malformed cursor"}]) from None
    return moment, order_id
