"""``create_app(settings)``: the aiohttp application of balance_service."""

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from balance_service.api.errors import ERROR_MAP
from balance_service.api.routes import setup_routes
from balance_service.bootstrap import DEPS, deps_ctx
from balance_service.config import Settings
from balance_service.db.errors import DATABASE_ERRORS
from balance_service.messaging import orders, saga
from balance_service.service import idempotency
from shared.db.migrations import PLATFORM, MigrationSource, migrate
from shared.db.pool import postgres_ctx
from shared.events import REGISTRY
from shared.messaging import topics
from shared.web.app import create_base_app
from shared.web.dead_letters import setup_dead_letter_routes
from shared.web.openapi import setup_openapi
from shared.wiring import background, consumer_ctx, messaging_ctx

SERVICE = "balance"
log = logging.getLogger(__name__)
MIGRATIONS = [PLATFORM, MigrationSource(SERVICE, Path(__file__).parent / "db" / "migrations")]


async def migrate_database(settings: Settings) -> None:
    """Apply this service's migrations (``python -m balance_service migrate``)."""
    await migrate(settings.database_url, MIGRATIONS)


async def _expire_keys(app: web.Application) -> None:
    """Every ``cleanup_interval_s``, forget old Idempotency-Keys (inbox rows are purged by the
    platform's retention job); a failure is logged and retried next time."""
    deps = app[DEPS]
    while True:
        try:
            await idempotency.expire_keys(deps.uow, key_hours=deps.settings.idempotency_key_hours)
        except DATABASE_ERRORS as exc:
            log.warning("cleanup failed", extra={"error": repr(exc)})
        await asyncio.sleep(deps.settings.cleanup_interval_s)


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` and close in reverse."""
    app = create_base_app(settings, service=SERVICE, error_map=ERROR_MAP)
    setup_routes(app)
    setup_dead_letter_routes(app)
    app.cleanup_ctx.append(postgres_ctx(settings, MIGRATIONS))
    app.cleanup_ctx.append(messaging_ctx(settings))
    app.cleanup_ctx.append(deps_ctx(settings))
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
    app.cleanup_ctx.append(background("balance-housekeeping", _expire_keys))
    setup_openapi(app, title="Balance service")
    return app
