"""Opaque history cursors: the last id seen, in the grammar of :mod:`shared.web.cursors`."""

from __future__ import annotations

from shared.web.cursors import ID, Cursor
from shared.web.problems import ValidationProblem

HISTORY = Cursor("h", ID)


def encode(last_id: int) -> str:
    return HISTORY.encode(last_id)


def decode(cursor: str) -> int:
    """The id a cursor points after; a malformed cursor is ``400 VALIDATION_ERROR``."""
    try:
        return int(HISTORY.decode(cursor)[0])
    except ValueError:
        raise ValidationProblem([{"field": "cursor", "message": "malformed cursor"}]) from None
