"""``create_app(settings)``: the aiohttp application of order_service."""

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from order_service.api.errors import ERROR_MAP
from order_service.api.routes import setup_routes
from order_service.bootstrap import DEPS, bootstrap, flow_probe
from order_service.config import Settings
from order_service.db.history import SAGA_HISTORY
from order_service.db.outcomes import OutcomeWaiter
from order_service.db.sagas import arm_on_send
from order_service.messaging.consumers import USERS_CONSUMER, replies_handler, users_handler
from order_service.messaging.sweeper import run_sweeper
from order_service.service.housekeeping import run_housekeeping
from order_service.service.saga_runner import CONSUMER
from shared.db.migrations import PLATFORM, MigrationSource, migrate
from shared.db.pool import PG_POOL, postgres_ctx
from shared.db.retention import RetentionRule
from shared.events import REGISTRY
from shared.messaging import topics
from shared.messaging.topics import Topics
from shared.web.app import METRICS, create_base_app
from shared.web.dead_letters import setup_dead_letter_routes
from shared.web.openapi import setup_openapi
from shared.wiring import PROBES, RELAY, TOPICS, background, cancel, consumer_ctx, messaging_ctx

SERVICE = "order"
MIGRATIONS = [PLATFORM, MigrationSource(SERVICE, Path(__file__).parent / "db" / "migrations")]


async def migrate_database(settings: Settings) -> None:
    """Apply this service's migrations (``python -m order_service migrate``)."""
    await migrate(settings.database_url, MIGRATIONS)


def _deps_ctx(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """HTTP clients, the handlers' dependencies (``app[DEPS]``) and the outcome listener."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=settings.http_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            waiter = OutcomeWaiter(app[PG_POOL], settings.database_url)
            deps = bootstrap(settings, app[PG_POOL], session, app[TOPICS], waiter, app[METRICS].registry)
            assert deps.metrics is not None
            app[PROBES].append(flow_probe(deps.metrics))
            app[DEPS] = deps
            task = asyncio.create_task(waiter.run(), name="order-outcome-listener")
            await asyncio.wait_for(waiter.ready.wait(), 10)
            yield
            await cancel(task)

    return ctx


def _sweeper(settings: Settings) -> Callable[[web.Application], Coroutine[Any, Any, None]]:
    def hold(app: web.Application) -> Callable[[], bool]:
        return lambda: app[RELAY].failed_within(settings.saga_outage_grace_s)

    return lambda a: run_sweeper(a[DEPS], settings.saga_sweep_interval_s, settings.saga_sweep_batch, hold=hold(a))


def retention(settings: Settings) -> list[tuple[RetentionRule, timedelta]]:
    """What the retention job purges here besides the inbox and replayed dead letters."""
    return [(SAGA_HISTORY, timedelta(hours=settings.saga_history_retention_hours))]


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` and close in reverse."""
    app = create_base_app(settings, service=SERVICE, error_map=ERROR_MAP)
    app.cleanup_ctx.append(postgres_ctx(settings, MIGRATIONS))
    # saga deadlines start when the broker acknowledged their command (domain/saga.py ``arm``)
    app.cleanup_ctx.append(
        messaging_ctx(settings, on_sent=arm_on_send(Topics(settings.kafka_topic_prefix)), retention=retention(settings))
    )
    app.cleanup_ctx.append(_deps_ctx(settings))
    if settings.saga_workers:
        app.cleanup_ctx.append(background("saga-sweeper", _sweeper(settings)))
        app.cleanup_ctx.append(
            consumer_ctx(
                settings,
                group=CONSUMER,
                topics=[topics.SAGA_REPLIES],
                registry=REGISTRY,
                handler=lambda a: replies_handler(a[DEPS]),
            )
        )
    app.cleanup_ctx.append(
        consumer_ctx(
            settings,
            group=USERS_CONSUMER,
            topics=[topics.USER_REGISTERED],
            registry=REGISTRY,
            handler=lambda a: users_handler(a[DEPS]),
            projection=True,
        )
    )
    app.cleanup_ctx.append(background("order-housekeeping", lambda a: run_housekeeping(a[DEPS])))
    setup_routes(app)
    setup_dead_letter_routes(app)
    setup_openapi(app, title="Order service")
    return app
