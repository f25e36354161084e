"""Periodic deletion of what no longer needs keeping: old idempotency keys and inbox rows."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from balance_service.db import idempotency as keys_db

log = logging.getLogger(__name__)


async def clean_once(pool: asyncpg.Pool, *, key_hours: float, inbox_hours: float) -> int:
    """Delete expired keys and inbox rows; returns how many keys went."""
    async with pool.acquire() as conn:
        removed = await keys_db.delete_older_than(conn, key_hours)
        await conn.execute(
            "DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)", inbox_hours * 3600
        )
    return removed


async def run(pool: asyncpg.Pool, *, interval_s: float, key_hours: float, inbox_hours: float) -> None:
    """Clean every ``interval_s`` until cancelled; a failure is logged and retried next time."""
    while True:
        try:
            await clean_once(pool, key_hours=key_hours, inbox_hours=inbox_hours)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("cleanup failed", extra={"error": repr(exc)})
        await asyncio.sleep(interval_s)
