"""``create_app(settings)``: the aiohttp application of ranking_service."""

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from ranking_service.api.errors import ERROR_MAP
from ranking_service.api.routes import setup_routes
from ranking_service.bootstrap import DEPS, bootstrap
from ranking_service.config import Settings
from ranking_service.messaging.consumers import GROUP, completed_orders_handler
from ranking_service.service.ports import Clock
from ranking_service.service.scheduler import Scheduler
from shared.db.migrations import PLATFORM, MigrationSource, migrate
from shared.db.pool import PG_POOL, postgres_ctx
from shared.events import REGISTRY
from shared.messaging import topics
from shared.messaging.envelope import utcnow
from shared.web.app import create_base_app
from shared.web.dead_letters import setup_dead_letter_routes
from shared.web.openapi import setup_openapi
from shared.wiring import cancel, consumer_ctx, messaging_ctx

SERVICE = "ranking"
MIGRATIONS = [PLATFORM, MigrationSource(SERVICE, Path(__file__).parent / "db" / "migrations")]
SCHEDULER = web.AppKey("scheduler", Scheduler)


async def migrate_database(settings: Settings) -> None:
    """Apply this service's migrations (``python -m ranking_service migrate``)."""
    await migrate(settings.database_url, MIGRATIONS)


def _deps_ctx(settings: Settings, clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    """The handlers' dependencies (they need the pool) and the batch scheduler for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        deps = app[DEPS] = bootstrap(settings, app[PG_POOL], clock)
        scheduler = app[SCHEDULER] = Scheduler(
            deps.uow, deps.clock, deps.rules, deps.instance_id, settings.batch_interval_s
        )
        task = asyncio.create_task(scheduler.run(), name="ranking-batch")
        yield
        await cancel(task)

    return ctx


def create_app(settings: Settings, *, clock: Clock = utcnow) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` and close in reverse."""
    app = create_base_app(settings, service=SERVICE, error_map=ERROR_MAP)
    app.cleanup_ctx.append(postgres_ctx(settings, MIGRATIONS))
    app.cleanup_ctx.append(_deps_ctx(settings, clock))
    app.cleanup_ctx.append(messaging_ctx(settings, topics=(topics.ORDER_COMPLETED, topics.DEAD_LETTER)))
    app.cleanup_ctx.append(
        consumer_ctx(
            settings,
            group=GROUP,
            topics=[topics.ORDER_COMPLETED],
            registry=REGISTRY,
            handler=lambda app: completed_orders_handler(app[DEPS]),
            projection=True,
        )
    )
    setup_routes(app)
    setup_dead_letter_routes(app)
    setup_openapi(app, title="Ranking service")
    return app
