"""What the use cases need, built once in ``create_app`` and reached through an app key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from ranking_service.domain.calendar import day_of
from ranking_service.service.cache import AnswerCache

Clock = Callable[[], datetime]
"""Returns the current instant, timezone-aware (tests inject their own)."""


@dataclass
class Ranking:
    """The ranking context's dependencies and settings."""

    pool: asyncpg.Pool
    clock: Clock
    tz: ZoneInfo
    cache: AnswerCache
    instance_id: str
    snapshot_size: int = 100
    catch_up_days: int = 30
    batch_delay_s: float = 0.0

    def today(self) -> date:
        return day_of(self.clock(), self.tz)
