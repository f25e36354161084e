"""Unit tests of the answer cache (a fake monotonic clock, no IO)."""

from __future__ import annotations

from ranking_service.service.cache import AnswerCache


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    ticks = Ticks()
    cache = AnswerCache(1.5, ticks)
    cache.put("k", "v", cache.generation)
    ticks.now += 1.4
    assert cache.get("k") == "v"
    ticks.now += 0.2
    assert cache.get("k") is None


def test_clear_drops_entries_and_refuses_answers_computed_before_it() -> None:
    cache = AnswerCache(10, Ticks())
    cache.put("k", "v", cache.generation)
    started = cache.generation
    cache.clear()
    assert cache.get("k") is None
    cache.put("k", "stale", started)
    assert cache.get("k") is None
    cache.put("k", "fresh", cache.generation)
    assert cache.get("k") == "fresh"


def test_zero_ttl_caches_nothing() -> None:
    cache = AnswerCache(0, Ticks())
    cache.put("k", "v", cache.generation)
    assert cache.get("k") is None
