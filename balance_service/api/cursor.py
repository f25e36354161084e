"""Opaque history cursors: urlsafe base64 of the last id seen."""

from __future__ import annotations

import base64
import binascii

from shared.web.problems import ValidationProblem
from shared.web.validation import MAX_ID


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"h:{last_id}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int:
    """The id a cursor points after; a malformed cursor is ``400 VALIDATION_ERROR``."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, digits = text.partition(":")
        if prefix == "h" and digits.isascii() and digits.isdigit() and 1 <= int(digits) <= MAX_ID:
            return int(digits)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ValidationProblem([{"field": "cursor", "message": "malformed cursor"}])
