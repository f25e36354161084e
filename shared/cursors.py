"""Page cursors whose grammar is one regular expression, declared in the OpenAPI document.

A cursor is opaque to clients, but its syntax is not: the spec declares the exact ``pattern``,
and every string that matches it decodes (an id up to the bigint maximum, a moment up to the
year 4000, a UUID). So a generated client, or a fuzzer, that sends a schema-valid cursor is
never refused; anything else is ``400 VALIDATION_ERROR``. Parts are lower-case hex, joined by
``.``, after a one-letter prefix naming the list.

This module has no web dependency, so a repository or a handler can build and read cursors too;
:func:`shared.web.cursors.parse_cursor` turns a malformed one into ``400 VALIDATION_ERROR``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


@dataclass(frozen=True)
class Part:
    """One component: its regular expression, and how to write and read it."""

    pattern: str
    encode: Callable[[Any], str]
    decode: Callable[[str], Any]


ID = Part(r"(?:[0-9a-f]{1,15}|[0-7][0-9a-f]{15})", lambda v: f"{v:x}", lambda s: int(s, 16))
"""A non-negative bigint (0..2**63-1)."""
MOMENT = Part(
    r"[0-9a-f]{1,14}",
    lambda v: f"{(v - _EPOCH) // _MICRO:x}",
    lambda s: _EPOCH + int(s, 16) * _MICRO,
)
"""An aware datetime at or after 1970, to the microsecond (up to about the year 4250)."""
UUID = Part(r"[0-9a-f]{32}", lambda v: uuid.UUID(str(v)).hex, lambda s: str(uuid.UUID(hex=s)))
"""A UUID, read back in its canonical text form."""
NAME = Part(r"[a-z][a-z0-9_]{0,31}", str, str)
"""A lower-case name (a service's, a step's)."""


class Cursor:
    """A cursor type: ``prefix`` then the parts."""

    def __init__(self, prefix: str, *parts: Part) -> None:
        self.parts = parts
        self.prefix = prefix
        self.pattern = "^" + re.escape(prefix) + r"\.".join(p.pattern for p in parts) + "$"
        self._regex = re.compile("^" + re.escape(prefix) + r"\.".join(f"({p.pattern})" for p in parts) + "$")

    def encode(self, *values: Any) -> str:
        return self.prefix + ".".join(p.encode(v) for p, v in zip(self.parts, values, strict=True))

    def decode(self, text: str) -> tuple[Any, ...]:
        """The values; ``ValueError`` when ``text`` does not match the pattern."""
        match = self._regex.match(text)
        if match is None:
            raise ValueError("malformed cursor")
        return tuple(p.decode(s) for p, s in zip(self.parts, match.groups(), strict=True))


__all__ = ["ID", "MOMENT", "NAME", "UUID", "Cursor", "Part"]
