"""``bootstrap(...) -> Deps``: the handlers' dependencies wired to PostgreSQL and the HTTP clients,
stored on the application under the one key :data:`DEPS`."""

from __future__ import annotations

import aiohttp
import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry

from order_service.clients import HttpCatalog
from order_service.config import Settings
from order_service.db.sagas import unfinished_by_step
from order_service.db.unit_of_work import OrderSingleStatement, OrderUnitOfWork
from order_service.domain.errors import UpstreamUnavailableError
from order_service.domain.saga import Policy
from order_service.service.deps import Deps
from order_service.service.flow_metrics import FlowMetrics
from order_service.service.ports import OutcomeWaiter
from shared.clients.balance import BalanceClient
from shared.db.gauges import Probe
from shared.known_users import KnownUsers
from shared.messaging.topics import Topics

DEPS = web.AppKey("order_deps", Deps)


def policy(settings: Settings) -> Policy:
    return Policy(
        step_timeout_s=settings.saga_step_timeout_s,
        max_attempts=settings.saga_max_attempts,
        backoff_cap_s=settings.saga_backoff_cap_s,
    )


def bootstrap(
    settings: Settings,
    pool: asyncpg.Pool,
    session: aiohttp.ClientSession,
    topics: Topics,
    waiter: OutcomeWaiter,
    registry: CollectorRegistry | None = None,
) -> Deps:
    """The handlers' dependencies (``registry``: where the flow metrics go, none without)."""
    balance = BalanceClient(session, settings.balance_url, unavailable=_registry_unavailable)
    return Deps(
        uow=lambda: OrderUnitOfWork(pool),
        statement=lambda: OrderSingleStatement(pool),
        users=KnownUsers(lambda: OrderSingleStatement(pool), balance),
        topics=topics,
        policy=policy(settings),
        catalog=HttpCatalog(session, settings.catalog_url),
        waiter=waiter,
        wait_timeout_s=settings.order_wait_timeout_s,
        metrics=FlowMetrics(registry) if registry is not None else None,
    )


def _registry_unavailable(message: str) -> Exception:
    """balance_service could not answer a user lookup: 503 (the detail as this service wrote it)."""
    return UpstreamUnavailableError(message.replace("the user lookup", "the user registry"))


def flow_probe(metrics: FlowMetrics) -> Probe:
    """The periodic read behind the unfinished-saga gauges."""

    async def probe(conn: asyncpg.Connection) -> None:
        metrics.show_unfinished(*await unfinished_by_step(conn))

    return probe
