"""``bootstrap(settings, pool) -> Deps``: what the catalog's handlers need, built once at start.

Stored under :data:`DEPS`; the views and the consumer take what they need from it. With
``app.py``, the only module that imports ``catalog_service.db``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from catalog_service.config import Settings
from catalog_service.db.unit_of_work import single_statement, unit_of_work
from catalog_service.service.ports import SingleStatementFactory, UnitOfWorkFactory
from shared.db.dead_letter_hooks import failure_reply_hook
from shared.db.dead_letters import DeadLetterHook
from shared.db.pool import PG_POOL
from shared.events.saga import DeductStock, RestoreStock, StockDeductionFailed
from shared.messaging import topics
from shared.messaging.topics import Topics
from shared.wiring import TOPICS


@dataclass(frozen=True)
class Deps:
    """The handlers' dependencies."""

    uow: UnitOfWorkFactory
    """A transaction (creates, changes, the saga's stock step)."""
    single_statement: SingleStatementFactory
    """No ``BEGIN``/``COMMIT``: the reads that are one statement."""
    replies_topic: str
    """``saga.replies`` with this deployment's prefix."""


DEPS = web.AppKey("catalog_deps", Deps)
INBOX = "catalog"
"""The inbox name of the ``saga.stock.commands`` consumer."""


def bootstrap(settings: Settings, pool: asyncpg.Pool) -> Deps:
    return Deps(
        uow=unit_of_work(pool),
        single_statement=single_statement(pool),
        replies_topic=Topics(settings.kafka_topic_prefix)(topics.SAGA_REPLIES),
    )


def deps_ctx(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """``cleanup_ctx``: ``app[DEPS]`` built on the pool (add after ``postgres_ctx``, before the consumer)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[DEPS] = bootstrap(settings, app[PG_POOL])
        yield

    return ctx


def dead_letter_hook(app: web.Application) -> DeadLetterHook:
    """A set-aside DeductStock fails its order (PROCESSING_FAILED); a RestoreStock waits for a replay."""
    return failure_reply_hook(
        INBOX, app[TOPICS](topics.SAGA_REPLIES), {DeductStock: StockDeductionFailed}, (RestoreStock,)
    )
