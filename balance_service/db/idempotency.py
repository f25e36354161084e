"""SQL of Idempotency-Key records: claim a key, read the stored outcome, store it."""

from __future__ import annotations

from typing import Any

import asyncpg

# A racing duplicate blocks here on the primary key until the first transaction ends.
_CLAIM = """
INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING RETURNING true
"""


async def claim(conn: asyncpg.Connection, user_id: int, key: str, fingerprint: str) -> bool:
    """``True`` when the key is new (this transaction owns it)."""
    return bool(await conn.fetchval(_CLAIM, user_id, key, fingerprint))


async def stored(conn: asyncpg.Connection, user_id: int, key: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT fingerprint, outcome FROM idempotency_keys WHERE user_id = $1 AND key = $2", user_id, key
    )


async def store(conn: asyncpg.Connection, user_id: int, key: str, outcome: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET outcome = $3 WHERE user_id = $1 AND key = $2", user_id, key, outcome
    )


async def delete_older_than(conn: asyncpg.Connection, hours: float) -> int:
    """Forget keys older than ``hours``; returns how many."""
    result = await conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)", hours * 3600
    )
    return int(result.split()[-1])
