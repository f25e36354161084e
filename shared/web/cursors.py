"""Cursors at the HTTP edge: the codec (:mod:`shared.cursors`, re-exported here) and
:func:`parse_cursor`, which answers a malformed cursor with ``400 VALIDATION_ERROR``."""

from __future__ import annotations

from typing import Any

from shared.cursors import ID, MOMENT, NAME, UUID, Cursor, Part
from shared.web.problems import ValidationProblem


def parse_cursor(cursor: Cursor, text: str, message: str = "malformed cursor") -> tuple[Any, ...]:
    """The values of ``text``, a cursor of type ``cursor``; anything else is a ``400`` naming the
    ``cursor`` field with ``message``."""
    try:
        return cursor.decode(text)
    except ValueError:
        raise ValidationProblem([{"field": "cursor", "message": message}]) from None


__all__ = ["ID", "MOMENT", "NAME", "UUID", "Cursor", "Part", "parse_cursor"]
