"""SQL of Idempotency-Key records (written by ``balances.charge_once``): read and expire."""

from __future__ import annotations

import asyncpg


async def stored(conn: asyncpg.Connection, user_id: int, key: str) -> asyncpg.Record | None:
    """``fingerprint`` and ``outcome`` (``{"before", "after"}``) of a recorded key."""
    return await conn.fetchrow(
        "SELECT fingerprint, outcome FROM idempotency_keys WHERE user_id = $1 AND key = $2", user_id, key
    )


async def delete_older_than(conn: asyncpg.Connection, hours: float) -> int:
    """Forget keys older than ``hours``; returns how many."""
    result = await conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)", hours * 3600
    )
    return int(result.split()[-1])
