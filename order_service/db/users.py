"""SQL of the known users (the ``user.registered`` projection)."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

import asyncpg

Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool

# --- known users ------------------------------------------------------------------------------


async def user_known(conn: Executor, user_id: int) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM known_users WHERE user_id = $1", user_id))


async def remember_user(conn: Executor, user_id: int, name: str, created_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO known_users (user_id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        user_id,
        name,
        created_at,
    )


class PgKnownUsers:
    """The known users repository on one connection (see ``service.ports.KnownUserRows``)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def known(self, user_id: int) -> bool:
        return await user_known(self._conn, user_id)

    async def remember(self, user_id: int, name: str, created_at: datetime) -> None:
        await remember_user(self._conn, user_id, name, created_at)
