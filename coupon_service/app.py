"""``create_app(settings)``: the aiohttp application of coupon_service."""

from pathlib import Path

from aiohttp import web

from coupon_service.api.errors import ERROR_MAP
from coupon_service.api.routes import setup_routes
from coupon_service.bootstrap import DEPS, deps_ctx
from coupon_service.config import Settings
from coupon_service.messaging.consumers import SAGA_GROUP, USERS_GROUP, dead_letter_hook, saga_handler, users_handler
from shared.db.migrations import PLATFORM, MigrationSource, migrate
from shared.db.pool import postgres_ctx
from shared.events import REGISTRY
from shared.messaging import topics
from shared.web.app import create_base_app
from shared.web.dead_letters import setup_dead_letter_routes
from shared.web.openapi import setup_openapi
from shared.wiring import consumer_ctx, messaging_ctx

SERVICE = "coupon"
MIGRATIONS = [PLATFORM, MigrationSource(SERVICE, Path(__file__).parent / "db" / "migrations")]


async def migrate_database(settings: Settings) -> None:
    """Apply this service's migrations (``python -m coupon_service migrate``)."""
    await migrate(settings.database_url, MIGRATIONS)


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` and close in reverse."""
    app = create_base_app(settings, service=SERVICE, error_map=ERROR_MAP)
    app.cleanup_ctx.append(postgres_ctx(settings, MIGRATIONS))
    app.cleanup_ctx.append(messaging_ctx(settings))
    app.cleanup_ctx.append(deps_ctx(settings))
    app.cleanup_ctx.append(
        consumer_ctx(
            settings,
            group=USERS_GROUP,
            topics=[topics.USER_REGISTERED],
            registry=REGISTRY,
            handler=lambda a: users_handler(a[DEPS]),
            projection=True,
        )
    )
    app.cleanup_ctx.append(
        consumer_ctx(
            settings,
            group=SAGA_GROUP,
            topics=[topics.COUPON_COMMANDS],
            registry=REGISTRY,
            handler=lambda a: saga_handler(a[DEPS]),
            hook=lambda a: dead_letter_hook(a[DEPS]),
        )
    )
    setup_routes(app)
    setup_dead_letter_routes(app)
    setup_openapi(app, title="Coupon service")
    return app
