"""Opaque history cursors: the last id seen, in the grammar of :mod:`shared.cursors`."""

from __future__ import annotations

from shared.cursors import ID, Cursor
from shared.web.cursors import parse_cursor

HISTORY = Cursor("h", ID)


def encode(last_id: int) -> str:
    return HISTORY.encode(last_id)


def decode(cursor: str) -> int:
    """The id a cursor points after; a malformed cursor is ``400 VALIDATION_ERROR``."""
    (last_id,) = parse_cursor(HISTORY, cursor)
    return int(last_id)
