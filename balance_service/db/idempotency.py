"""SQL of Idempotency-Key records (written by the charge statement, ``PgBalances.charge_once``):
read and expire."""

from __future__ import annotations

import asyncpg

from balance_service.domain.model import StoredKey

_STORED = "SELECT fingerprint, outcome FROM idempotency_keys WHERE user_id = $1 AND key = $2"
_EXPIRE = "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)"


class PgIdempotencyKeys:
    """Recorded Idempotency-Keys on one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def stored(self, user_id: int, key: str) -> StoredKey | None:
        """The fingerprint and outcome of a recorded key."""
        row = await self._conn.fetchrow(_STORED, user_id, key)
        return None if row is None else StoredKey(row["fingerprint"], row["outcome"])

    async def delete_older_than(self, hours: float) -> int:
        """Forget keys older than ``hours``; returns how many."""
        result: str = await self._conn.execute(_EXPIRE, hours * 3600)
        return int(result.rsplit(maxsplit=1)[-1])
