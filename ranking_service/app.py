"""``create_app(settings)``: the aiohttp application of ranking_service."""

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from ranking_service.api.routes import setup_routes
from ranking_service.api.views import RANKING
from ranking_service.config import Settings
from ranking_service.domain.errors import InvalidRebuildDayError, RankingError
from ranking_service.messaging.consumers import GROUP, completed_orders_handler
from ranking_service.service.cache import AnswerCache
from ranking_service.service.context import Clock, Ranking
from ranking_service.service.scheduler import Scheduler
from shared.db.migrations import PLATFORM, MigrationSource, migrate
from shared.db.pool import PG_POOL, postgres_ctx
from shared.events import REGISTRY
from shared.messaging import topics
from shared.messaging.envelope import utcnow
from shared.web.app import create_base_app
from shared.web.dead_letters import setup_dead_letter_routes
from shared.web.openapi import setup_openapi
from shared.web.problems import ProblemSpec
from shared.wiring import cancel, consumer_ctx, messaging_ctx

SERVICE = "ranking"
MIGRATIONS = [PLATFORM, MigrationSource(SERVICE, Path(__file__).parent / "db" / "migrations")]
SCHEDULER = web.AppKey("scheduler", Scheduler)
ERRORS = {
    InvalidRebuildDayError: ProblemSpec(400, "VALIDATION_ERROR", "Invalid request"),
    RankingError: ProblemSpec(500, "RANKING_ERROR", "Ranking error"),
}


async def migrate_database(settings: Settings) -> None:
    """Apply this service's migrations (``python -m ranking_service migrate``)."""
    await migrate(settings.database_url, MIGRATIONS)


def _ranking_ctx(settings: Settings, clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    """The use cases' context (needs the pool) and the batch scheduler for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[RANKING] = Ranking(
            pool=app[PG_POOL],
            clock=clock,
            tz=ZoneInfo(settings.timezone),
            cache=AnswerCache(settings.cache_ttl_s),
            instance_id=settings.instance_id,
            snapshot_size=settings.snapshot_size,
            catch_up_days=settings.batch_catch_up_days,
            batch_delay_s=settings.batch_delay_s,
        )
        app[SCHEDULER] = Scheduler(app[RANKING], settings.batch_interval_s)
        task = asyncio.create_task(app[SCHEDULER].run(), name="ranking-batch")
        yield
        await cancel(task)

    return ctx


def create_app(settings: Settings, *, clock: Clock = utcnow) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` and close in reverse."""
    app = create_base_app(settings, service=SERVICE, error_map=ERRORS)
    app.cleanup_ctx.append(postgres_ctx(settings, MIGRATIONS))
    app.cleanup_ctx.append(_ranking_ctx(settings, clock))
    app.cleanup_ctx.append(messaging_ctx(settings, topics=(topics.ORDER_COMPLETED, topics.DEAD_LETTER)))
    app.cleanup_ctx.append(
        consumer_ctx(
            settings,
            group=GROUP,
            topics=[topics.ORDER_COMPLETED],
            registry=REGISTRY,
            handler=lambda app: completed_orders_handler(app[RANKING]),
            projection=True,
        )
    )
    setup_routes(app)
    setup_dead_letter_routes(app)
    setup_openapi(app, title="Ranking service")
    return app
