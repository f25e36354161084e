"""``create_app(settings)``: the aiohttp application of catalog_service."""

from pathlib import Path

from aiohttp import web

from catalog_service.api.errors import ERROR_MAP
from catalog_service.api.routes import setup_routes
from catalog_service.bootstrap import dead_letter_hook, deps_ctx
from catalog_service.config import Settings
from catalog_service.messaging.consumers import GROUP, TOPICS_CONSUMED, stock_commands_handler
from shared.db.migrations import PLATFORM, MigrationSource, migrate
from shared.db.pool import postgres_ctx
from shared.events import REGISTRY
from shared.web.app import create_base_app
from shared.web.dead_letters import setup_dead_letter_routes
from shared.web.openapi import setup_openapi
from shared.wiring import consumer_ctx, messaging_ctx

SERVICE = "catalog"
MIGRATIONS = [PLATFORM, MigrationSource(SERVICE, Path(__file__).parent / "db" / "migrations")]


async def migrate_database(settings: Settings) -> None:
    """Apply this service's migrations (``python -m catalog_service migrate``)."""
    await migrate(settings.database_url, MIGRATIONS)


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` and close in reverse."""
    app = create_base_app(settings, service=SERVICE, error_map=ERROR_MAP)
    app.cleanup_ctx.append(postgres_ctx(settings, MIGRATIONS))
    app.cleanup_ctx.append(deps_ctx(settings))
    app.cleanup_ctx.append(messaging_ctx(settings))
    if settings.consume_saga:
        app.cleanup_ctx.append(
            consumer_ctx(
                settings,
                group=GROUP,
                topics=TOPICS_CONSUMED,
                registry=REGISTRY,
                handler=stock_commands_handler,
                hook=dead_letter_hook,
            )
        )
    setup_routes(app)
    setup_dead_letter_routes(app)
    setup_openapi(app, title="Catalog service")
    return app
