"""When the daily rollup is due, and which days it still has to roll up."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ranking_service.domain.calendar import day_of


def batch_today(now: datetime, tz: ZoneInfo, delay_s: float = 0.0) -> date:
    """The day the batch considers current: a day is closed ``delay_s`` after its midnight."""
    return day_of(now - timedelta(seconds=delay_s), tz)


def days_due(today: date, done: Iterable[date], catch_up_days: int) -> list[date]:
    """The closed days (before ``today``, at most ``catch_up_days`` back) not rolled up yet, oldest first."""
    finished = set(done)
    candidates = (today - timedelta(days=n) for n in range(catch_up_days, 0, -1))
    return [day for day in candidates if day not in finished]
