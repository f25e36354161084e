"""``create_app(settings)``: the aiohttp application of balance_service."""

from pathlib import Path

from aiohttp import web

from balance_service.config import Settings
from shared.db.migrations import PLATFORM, MigrationSource, migrate
from shared.db.pool import postgres_ctx
from shared.web.app import create_base_app
from shared.web.openapi import setup_openapi
from shared.wiring import messaging_ctx

SERVICE = "balance"
MIGRATIONS = [PLATFORM, MigrationSource(SERVICE, Path(__file__).parent / "db" / "migrations")]


async def migrate_database(settings: Settings) -> None:
    """Apply this service's migrations (``python -m balance_service migrate``)."""
    await migrate(settings.database_url, MIGRATIONS)


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` and close in reverse."""
    app = create_base_app(settings, service=SERVICE)
    app.cleanup_ctx.append(postgres_ctx(settings, MIGRATIONS))
    app.cleanup_ctx.append(messaging_ctx(settings))
    setup_openapi(app, title="Balance service")
    return app
