"""Opaque page cursors of a user's coupons, in the grammar of :mod:`shared.web.cursors`."""

from __future__ import annotations

from datetime import datetime

from shared.cursors import ID, MOMENT, Cursor
from shared.web.cursors import parse_cursor

OWNED = Cursor("c", MOMENT, ID)
"""(issued_at, user_coupon_id) of the last coupon of the previous page."""


def encode(after: tuple[datetime, int]) -> str:
    return OWNED.encode(*after)


def decode(cursor: str) -> tuple[datetime, int]:
    """The keyset position a cursor points after; a malformed cursor is ``400 VALIDATION_ERROR``."""
    issued_at, user_coupon_id = parse_cursor(OWNED, cursor)
    return issued_at, user_coupon_id
