"""Calendar days in the service's time zone, and the window of the last ``days`` days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def day_of(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar day on which ``instant`` (timezone-aware) falls in ``tz``."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return instant.astimezone(tz).date()


@dataclass(frozen=True)
class Window:
    """An inclusive range of calendar days."""

    first: date
    last: date

    @classmethod
    def ending(cls, today: date, days: int) -> Window:
        """The last ``days`` calendar days, ``today`` included."""
        if days < 1:
            raise ValueError("days must be at least 1")
        return cls(today - timedelta(days=days - 1), today)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last
