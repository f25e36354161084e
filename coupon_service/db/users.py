"""The known-users projection."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg


async def is_known(conn: asyncpg.Connection | asyncpg.Pool, user_id: int) -> bool:
    return await conn.fetchval("SELECT EXISTS (SELECT 1 FROM known_users WHERE user_id = $1)", user_id)


async def add_known(conn: asyncpg.Connection | asyncpg.Pool, users: Iterable[tuple[int, str, datetime]]) -> None:
    """Record users; ones already known are left as they are."""
    rows = list(users)
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO known_users (user_id, name, created_at)
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])
        ON CONFLICT (user_id) DO NOTHING
        """,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
    )
