"""``create_app(settings)``: the aiohttp application of coupon_service."""

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from coupon_service.api.errors import ERRORS
from coupon_service.api.routes import setup_routes
from coupon_service.api.views import COUPONS, ISSUER, USERS
from coupon_service.clients.balance import BalanceUserDirectory
from coupon_service.config import Settings
from coupon_service.messaging.consumers import (
    SAGA_GROUP,
    USERS_GROUP,
    dead_letter_hook,
    saga_handler,
    users_handler,
)
from coupon_service.service.coupons import Coupons
from coupon_service.service.issuing import Issuer
from coupon_service.service.users import KnownUsers
from shared.db.migrations import PLATFORM, MigrationSource, migrate
from shared.db.pool import PG_POOL, postgres_ctx
from shared.events import REGISTRY
from shared.messaging import topics
from shared.web.app import create_base_app
from shared.web.dead_letters import setup_dead_letter_routes
from shared.web.openapi import setup_openapi
from shared.wiring import TOPICS, CleanupCtx, consumer_ctx, messaging_ctx

SERVICE = "coupon"
MIGRATIONS = [PLATFORM, MigrationSource(SERVICE, Path(__file__).parent / "db" / "migrations")]


async def migrate_database(settings: Settings) -> None:
    """Apply this service's migrations (``python -m coupon_service migrate``)."""
    await migrate(settings.database_url, MIGRATIONS)


def services_ctx(settings: Settings) -> CleanupCtx:
    """The HTTP session to balance_service and the service-layer objects built on the pool; batched
    issues in progress finish before the session and the pool close."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=settings.user_lookup_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            users = KnownUsers(app[PG_POOL], BalanceUserDirectory(session, settings.balance_url))
            app[USERS] = users
            app[COUPONS] = coupons = Coupons(app[PG_POOL], users)
            app[ISSUER] = issuer = Issuer(coupons, users)
            yield
            await issuer.batcher.aclose()

    return ctx


def create_app(settings: Settings) -> web.Application:
    """Build the application; resources open in ``cleanup_ctx`` and close in reverse."""
    app = create_base_app(settings, service=SERVICE, error_map=ERRORS)
    app.cleanup_ctx.append(postgres_ctx(settings, MIGRATIONS))
    app.cleanup_ctx.append(messaging_ctx(settings))
    app.cleanup_ctx.append(services_ctx(settings))
    app.cleanup_ctx.append(
        consumer_ctx(
            settings,
            group=USERS_GROUP,
            topics=[topics.USER_REGISTERED],
            registry=REGISTRY,
            handler=lambda a: users_handler(a[PG_POOL]),
            projection=True,
        )
    )
    app.cleanup_ctx.append(
        consumer_ctx(
            settings,
            group=SAGA_GROUP,
            topics=[topics.COUPON_COMMANDS],
            registry=REGISTRY,
            handler=lambda a: saga_handler(a[PG_POOL], a[TOPICS]),
            hook=lambda a: dead_letter_hook(a[TOPICS]),
        )
    )
    setup_routes(app)
    setup_dead_letter_routes(app)
    setup_openapi(app, title="Coupon service")
    return app
