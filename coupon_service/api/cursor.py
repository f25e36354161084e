"""Opaque page cursors of a user's coupons, in the grammar of :mod:`shared.web.cursors`."""

from __future__ import annotations

from datetime import datetime

from shared.web.cursors import ID, MOMENT, Cursor
from shared.web.problems import ValidationProblem

OWNED = Cursor("c", MOMENT, ID)
"""(issued_at, user_coupon_id) of the last coupon of the previous page."""


def encode(after: tuple[datetime, int]) -> str:
    return OWNED.encode(*after)


def decode(cursor: str) -> tuple[datetime, int]:
    """The keyset position a cursor points after; a malformed cursor is ``400 VALIDATION_ERROR``."""
    try:
        issued_at, user_coupon_id = OWNED.decode(cursor)
    except ValueError:
        raise ValidationProblem([{"field": "cursor", "message": "malformed cursor"}]) from None
    return issued_at, user_coupon_id
