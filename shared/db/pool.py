"""The asyncpg pool of a service, opened and closed in ``app.cleanup_ctx``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from shared.config import ServiceSettings
from shared.db.migrations import MigrationSource, migrate
from shared.web.app import HEALTH

PG_POOL = web.AppKey("pg_pool", asyncpg.Pool)
log = logging.getLogger(__name__)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections decode json/jsonb with orjson.

    asyncpg's reset query on release stays on purpose: it costs a round trip, but it is what finds
    a connection left broken by a lost server or a cancelled query and closes it, instead of handing
    it to the next request (seen as ``InternalClientError: cannot switch to state`` during a
    PostgreSQL restart when the reset was skipped).
    """
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=60
    )
    assert pool is not None
    return pool


async def close_pool(pool: asyncpg.Pool, timeout: float = 10.0) -> None:
    """Close gracefully, or terminate when connections do not come back in time."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        log.warning("pool did not close in time; terminating connections")
        pool.terminate()


def postgres_ctx(
    settings: ServiceSettings, sources: list[MigrationSource]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Apply migrations, open the pool as ``app[PG_POOL]``, add a readiness check; close on exit."""

    async def ctx(app: web.Application) -> AsyncIterator[Any]:
        applied = await migrate(settings.database_url, sources)
        if applied:
            log.info("migrations applied", extra={"migrations": applied})
        pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
        app[PG_POOL] = pool

        async def check() -> None:
            await pool.fetchval("SELECT 1")

        app[HEALTH].add_check("postgres", check)
        yield
        await close_pool(pool)

    return ctx
