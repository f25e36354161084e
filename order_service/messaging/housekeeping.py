"""Deleting inbox rows and idempotency keys past their retention."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)
IDEMPOTENCY_KEY_HOURS = 48  # the contract promises at least 24


async def run_housekeeping(pool: asyncpg.Pool, retention_hours: float, interval_s: float = 600.0) -> None:
    while True:
        try:
            await pool.execute(
                "DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)", retention_hours * 3600
            )
            await pool.execute(
                "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
                IDEMPOTENCY_KEY_HOURS,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("housekeeping failed", extra={"error": repr(exc)})
        await asyncio.sleep(interval_s)
