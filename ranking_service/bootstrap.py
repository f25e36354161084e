"""``bootstrap(settings, pool)``: the handlers' dependencies, built once and stored under ``DEPS``.

The only module besides ``app.py`` that knows the database adapters (``db/``); views and the
consumer take what their handler needs from :class:`Deps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from ranking_service.config import Settings
from ranking_service.db.unit_of_work import UnitsOfWork
from ranking_service.domain.model import BatchRules
from ranking_service.service.cache import AnswerCache
from ranking_service.service.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True)
class Deps:
    """What the ranking handlers need."""

    uow: UnitOfWorkFactory
    clock: Clock
    rules: BatchRules
    cache: AnswerCache
    instance_id: str

    @property
    def tz(self) -> ZoneInfo:
        return self.rules.tz


DEPS = web.AppKey("deps", Deps)


def bootstrap(settings: Settings, pool: asyncpg.Pool, clock: Clock, uow: UnitOfWorkFactory | None = None) -> Deps:
    """The dependencies over ``pool`` (or over ``uow``, e.g. the in-memory one of the tests)."""
    return Deps(
        uow=uow or UnitsOfWork(pool),
        clock=clock,
        rules=BatchRules(
            tz=ZoneInfo(settings.timezone),
            delay_s=settings.batch_delay_s,
            catch_up_days=settings.batch_catch_up_days,
            snapshot_size=settings.snapshot_size,
        ),
        cache=AnswerCache(settings.cache_ttl_s),
        instance_id=settings.instance_id,
    )
