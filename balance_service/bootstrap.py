"""``bootstrap``: everything the handlers depend on, built once and stored under one key (``DEPS``).

Views and consumers take what they need from ``app[DEPS]``; this module (with ``app``) is the
only one that knows the database adapters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from balance_service.config import Settings
from balance_service.db.unit_of_work import PostgresUnitsOfWork
from balance_service.service.balances import Charges
from balance_service.service.ports import UnitOfWorkFactory
from shared.db.pool import PG_POOL
from shared.wiring import TOPICS


@dataclass(frozen=True)
class Deps:
    """The handlers' dependencies: units of work (with repositories), the charge batcher and the
    deployment's topic names."""

    uow: UnitOfWorkFactory
    charges: Charges
    topics: Callable[[str], str]
    settings: Settings


DEPS = web.AppKey("balance_deps", Deps)


def bootstrap(settings: Settings, pool: asyncpg.Pool, topics: Callable[[str], str]) -> Deps:
    uow = PostgresUnitsOfWork(pool)
    return Deps(uow=uow, charges=Charges(uow), topics=topics, settings=settings)


def deps_ctx(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """``app[DEPS]`` over the app's pool and topics; batched charges in progress finish on exit
    (before the pool closes)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[DEPS] = deps = bootstrap(settings, app[PG_POOL], app[TOPICS])
        yield
        await deps.charges.batcher.aclose()

    return ctx
