"""``bootstrap``: every dependency of coupon_service's handlers, built once, under one ``DEPS`` key.

``app.py`` opens the resources (pool, Kafka, the HTTP session to balance_service) in
``cleanup_ctx`` and calls :func:`bootstrap` with them; views and consumers take what they need
from ``app[DEPS]``. This module and ``app.py`` are the only ones that import ``coupon_service.db``; the known users
and the balance client are the shared ones (``shared.known_users``, ``shared.clients.balance``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import asyncpg
from aiohttp import web

from coupon_service.config import Settings
from coupon_service.db.saga import record_raced
from coupon_service.db.unit_of_work import CouponSingleStatement, CouponUnitOfWork
from coupon_service.domain.errors import UserDirectoryUnavailableError
from coupon_service.service.coupons import Coupons
from coupon_service.service.issuing import Issuer
from coupon_service.service.ports import UnitOfWork, UnitOfWorkFactory, UserDirectory
from shared.clients.balance import BalanceClient
from shared.db.pool import PG_POOL
from shared.known_users import KnownUsers
from shared.messaging.envelope import utcnow
from shared.messaging.topics import Topics
from shared.wiring import TOPICS, CleanupCtx


@dataclass(frozen=True)
class Deps:
    """What views and consumers hand to the handlers."""

    uow: UnitOfWorkFactory
    """A transaction with the repositories (creating a coupon; the consumers' batches)."""
    single: UnitOfWorkFactory
    """The repositories without BEGIN/COMMIT (every issue path and the reads: one statement at a time)."""
    record_raced: Callable[[BaseException], bool]
    """Whether a batch failed because another transaction recorded one of its orders meanwhile."""
    users: KnownUsers
    coupons: Coupons
    issuer: Issuer
    topics: Topics
    clock: Callable[[], datetime]


DEPS = web.AppKey("deps", Deps)


def bootstrap(pool: asyncpg.Pool, directory: UserDirectory, names: Topics) -> Deps:
    """Wire the handlers' dependencies on an open pool and user directory."""

    def uow() -> UnitOfWork:
        return CouponUnitOfWork(pool)

    def single() -> UnitOfWork:
        return CouponSingleStatement(pool)

    users = KnownUsers(single, directory)
    coupons = Coupons(uow, single, users)
    return Deps(
        uow=uow,
        single=single,
        record_raced=record_raced,
        users=users,
        coupons=coupons,
        issuer=Issuer(coupons),
        topics=names,
        clock=utcnow,
    )


def deps_ctx(settings: Settings) -> CleanupCtx:
    """``app[DEPS]`` with the HTTP session to balance_service; batched issues in progress finish
    before the session and the pool close."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=settings.user_lookup_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            directory = BalanceClient(session, settings.balance_url, unavailable=UserDirectoryUnavailableError)
            app[DEPS] = deps = bootstrap(app[PG_POOL], directory, app[TOPICS])
            yield
            await deps.issuer.batcher.aclose()

    return ctx
