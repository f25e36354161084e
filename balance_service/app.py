"""``create_app(settings)``: the aiohttp application of balance_service."""

from pathlib import Path

from aiohttp import web

from balance_service.api.errors import ERROR_MAP
from balance_service.api.keys import CHARGES
from balance_service.api.routes import setup_routes
from balance_service.config import Settings
from balance_service.messaging import orders, saga
from balance_service.service import housekeeping
from balance_service.service.balances import Charges
from shared.db.migrations import PLATFORM, MigrationSource, migrate
from shared.db.pool import PG_POOL, postgres_ctx
from shared.events import REGISTRY
from shared.messaging import topics
from shared.web.app import create_base_app
from shared.web.dead_letters import setup_dead_letter_routes
from shared.web.openapi import setup_openapi
from shared.wiring import background, consumer_ctx, messaging_ctx

SERVICE = "balance"
MIGRATIONS = [PLATFORM, MigrationSource(SERVICE, Path(__file__).parent / "db" / "migrations")]


async def migrate_database(settings: Settings) -> None:
    """Apply this service's migrations (``python -m balance_service migrate``)."""
    await migrate(settings.database_url, MIGRATIONS)


def _housekeeping(settings: Settings):  # type: ignore[no-untyped-def]
    async def start(app: web.Application) -> None:
        await housekeeping.run(
            app[PG_POOL],
            interval_s=settings.cleanup_interval_s,
            key_hours=settings.idempotency_key_hours,
            inbox_hours=settings.retention_hours,
        )

    return start


async def _charges_ctx(app: web.Application):  # type: ignore[no-untyped-def]
    """Batched charges over the pool; flushes in progress finish before the pool closes."""
    app[CHARGES] = charges = Charges(app[PG_POOL])
    yield
    await charges.batcher.aclose()


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` and close in reverse."""
    app = create_base_app(settings, service=SERVICE, error_map=ERROR_MAP)
    setup_routes(app)
    setup_dead_letter_routes(app)
    app.cleanup_ctx.append(postgres_ctx(settings, MIGRATIONS))
    app.cleanup_ctx.append(_charges_ctx)
    app.cleanup_ctx.append(messaging_ctx(settings))
    app.cleanup_ctx.append(
        consumer_ctx(
            settings,
            group=saga.GROUP,
            topics=[topics.BALANCE_COMMANDS],
            registry=REGISTRY,
            handler=saga.from_app,
            hook=saga.dead_letter_hook,
        )
    )
    app.cleanup_ctx.append(
        consumer_ctx(
            settings,
            group=orders.GROUP,
            topics=[topics.ORDER_COMPLETED],
            registry=REGISTRY,
            handler=orders.from_app,
        )
    )
    app.cleanup_ctx.append(background("balance-housekeeping", _housekeeping(settings)))
    setup_openapi(app, title="Balance service")
    return app
