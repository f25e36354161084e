"""``create_app(settings)``: the aiohttp application of order_service."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from order_service.api.admin import setup_admin_routes
from order_service.api.errors import ERROR_MAP
from order_service.api.keys import ORDER_DEPS, WAIT_TIMEOUT, WAITER
from order_service.api.views import setup_routes
from order_service.clients import HttpCatalog, HttpUserRegistry
from order_service.config import Settings
from order_service.db.outcomes import OutcomeWaiter
from order_service.domain.saga import Policy
from order_service.messaging.consumers import replies_handler, users_handler
from order_service.messaging.housekeeping import run_housekeeping
from order_service.messaging.sweeper import run_sweeper
from order_service.service.flow_metrics import FlowMetrics
from order_service.service.orders import OrderDeps
from order_service.service.saga_runner import CONSUMER, SagaContext, arm_on_send
from shared.db.migrations import PLATFORM, MigrationSource, migrate
from shared.db.pool import PG_POOL, postgres_ctx
from shared.events import REGISTRY
from shared.messaging import topics
from shared.messaging.topics import Topics
from shared.web.app import METRICS, create_base_app
from shared.web.dead_letters import setup_dead_letter_routes
from shared.web.openapi import setup_openapi
from shared.wiring import PROBES, RELAY, TOPICS, background, cancel, consumer_ctx, messaging_ctx

SERVICE = "order"
MIGRATIONS = [PLATFORM, MigrationSource(SERVICE, Path(__file__).parent / "db" / "migrations")]
SAGA = web.AppKey("saga_context", SagaContext)


async def migrate_database(settings: Settings) -> None:
    """Apply this service's migrations (``python -m order_service migrate``)."""
    await migrate(settings.database_url, MIGRATIONS)


def _policy(settings: Settings) -> Policy:
    return Policy(
        step_timeout_s=settings.saga_step_timeout_s,
        max_attempts=settings.saga_max_attempts,
        backoff_cap_s=settings.saga_backoff_cap_s,
    )


def _services_ctx(settings: Settings):
    """HTTP clients, the saga context and the outcome listener."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=settings.http_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            pool = app[PG_POOL]
            flow = FlowMetrics(app[METRICS].registry)
            app[PROBES].append(flow.probe())
            app[SAGA] = SagaContext(pool, app[TOPICS], _policy(settings), flow)
            app[ORDER_DEPS] = OrderDeps(
                pool,
                app[TOPICS],
                _policy(settings),
                HttpCatalog(session, settings.catalog_url),
                HttpUserRegistry(session, settings.balance_url),
            )
            app[WAIT_TIMEOUT] = settings.order_wait_timeout_s
            waiter = OutcomeWaiter(pool, settings.database_url)
            app[WAITER] = waiter
            task = asyncio.create_task(waiter.run(), name="order-outcome-listener")
            await asyncio.wait_for(waiter.ready.wait(), 10)
            yield
            await cancel(task)

    return ctx


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` and close in reverse."""
    app = create_base_app(settings, service=SERVICE, error_map=ERROR_MAP)
    app.cleanup_ctx.append(postgres_ctx(settings, MIGRATIONS))
    # saga deadlines start when the broker acknowledged their command (domain/saga.py ``arm``)
    app.cleanup_ctx.append(messaging_ctx(settings, on_sent=arm_on_send(Topics(settings.kafka_topic_prefix))))
    app.cleanup_ctx.append(_services_ctx(settings))
    if settings.saga_workers:
        app.cleanup_ctx.append(
            background(
                "saga-sweeper",
                lambda a: run_sweeper(
                    a[SAGA],
                    settings.saga_sweep_interval_s,
                    settings.saga_sweep_batch,
                    hold=lambda: a[RELAY].failed_within(settings.saga_outage_grace_s),
                ),
            )
        )
        app.cleanup_ctx.append(
            consumer_ctx(
                settings,
                group=CONSUMER,
                topics=[topics.SAGA_REPLIES],
                registry=REGISTRY,
                handler=lambda a: replies_handler(a[SAGA]),
            )
        )
    app.cleanup_ctx.append(
        consumer_ctx(
            settings,
            group="order-users",
            topics=[topics.USER_REGISTERED],
            registry=REGISTRY,
            handler=lambda a: users_handler(a[PG_POOL]),
            projection=True,
        )
    )
    app.cleanup_ctx.append(
        background("order-housekeeping", lambda a: run_housekeeping(a[PG_POOL], settings.retention_hours))
    )
    setup_routes(app)
    setup_admin_routes(app)
    setup_dead_letter_routes(app)
    setup_openapi(app, title="Order service")
    return app
