"""A small in-process TTL cache for ranking answers, cleared when this instance applies a batch."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any


class AnswerCache:
    """Entries live ``ttl_s`` seconds; :meth:`clear` drops them all at once.

    A computation that started before a :meth:`clear` must not store its (possibly stale) answer
    afterwards, so :meth:`put` takes the generation seen when the computation started.
    """

    def __init__(self, ttl_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_s
        self._now = monotonic
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self.generation = 0

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._now():
            self._entries.pop(key, None)
            return None
        return entry[1]

    def put(self, key: Hashable, value: Any, generation: int) -> None:
        if generation != self.generation or self._ttl <= 0:
            return
        if len(self._entries) > 1024:  # days x limit x today is small; never grow without bound
            self._entries.clear()
        self._entries[key] = (self._now() + self._ttl, value)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
