"""SQL of the user registry."""

from __future__ import annotations

import asyncpg

from balance_service.domain.model import User

# The user and their balance row (at 0) in one statement.
_INSERT = """
WITH u AS (
    INSERT INTO users (name) VALUES ($1) RETURNING user_id, name, created_at
), b AS (
    INSERT INTO balances (user_id, updated_at) SELECT user_id, created_at FROM u
)
SELECT user_id, name, created_at FROM u
"""


_GET = "SELECT user_id, name, created_at FROM users WHERE user_id = $1"


class PgUsers:
    """The user registry on one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, name: str) -> User:
        row = await self._conn.fetchrow(_INSERT, name)
        assert row is not None
        return User(**dict(row))

    async def get(self, user_id: int) -> User | None:
        row = await self._conn.fetchrow(_GET, user_id)
        return None if row is None else User(**dict(row))
