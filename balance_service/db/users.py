"""SQL of the user registry."""

from __future__ import annotations

import asyncpg

# The user and their balance row (at 0) in one statement.
_INSERT = """
WITH u AS (
    INSERT INTO users (name) VALUES ($1) RETURNING user_id, name, created_at
), b AS (
    INSERT INTO balances (user_id, updated_at) SELECT user_id, created_at FROM u
)
SELECT user_id, name, created_at FROM u
"""


async def insert_user(conn: asyncpg.Connection, name: str) -> asyncpg.Record:
    row = await conn.fetchrow(_INSERT, name)
    assert row is not None
    return row


async def get_user(conn: asyncpg.Connection, user_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT user_id, name, created_at FROM users WHERE user_id = $1", user_id)
