"""Opaque page cursors: urlsafe base64 of the last item's (time, order_id)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from order_service.domain.order import Order
from shared.web.problems import ValidationProblem


def encode(order: Order) -> str:
    return encode_key(order.created_at, order.order_id)


def encode_key(moment: datetime, order_id: str) -> str:
    """A cursor after ``(moment, order_id)`` (orders by creation, sagas by start)."""
    raw = f"{moment.isoformat()}|{order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, order_id = raw.split("|")
        moment = datetime.fromisoformat(created)
        uuid.UUID(order_id)
        if moment.tzinfo is None:
            raise ValueError("naive time")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationProblem([{"field": "cursor", "message": "malformed cursor"}]) from None
    return moment, order_id
