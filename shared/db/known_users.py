"""SQL of the known-users projection (``user.registered`` -> ``known_users``), the repository of
:mod:`shared.known_users`. The table is each service's own (its migrations create it)::

    CREATE TABLE known_users (user_id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL);
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg

_ADD = """
INSERT INTO known_users (user_id, name, created_at)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])
ON CONFLICT (user_id) DO NOTHING
"""


class PgKnownUsers:
    """``known_users`` on one connection (a unit of work's)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def is_known(self, user_id: int) -> bool:
        known = await self._conn.fetchval("SELECT EXISTS (SELECT 1 FROM known_users WHERE user_id = $1)", user_id)
        return bool(known)

    async def add(self, users: Iterable[tuple[int, str, datetime]]) -> None:
        """Record users; ones already known are left as they are (one statement, none when empty)."""
        rows = list(users)
        if not rows:
            return
        await self._conn.execute(_ADD, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


__all__ = ["PgKnownUsers"]
