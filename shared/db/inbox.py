"""The inbox: which messages a consumer has already applied.

Call :func:`claim_new` inside the transaction that applies the effects: it records the ids and
returns those not seen before. A redelivered message is then recognised and skipped, and since
the record and the effects commit together, a crash in between leaves neither.

This module holds the one inbox ``INSERT`` (:data:`CLAIM_SQL`); a repository that fuses the claim
into a statement it already runs (balance's claim-and-lock, ranking's counted orders) embeds it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Protocol

import asyncpg

CLAIM_SQL = """
INSERT INTO inbox (consumer, message_id)
SELECT $1, id FROM unnest($2::uuid[]) AS u(id) ORDER BY id
ON CONFLICT DO NOTHING
RETURNING message_id
"""
"""Record ``$2`` (uuid[]) for consumer ``$1``; returns the ids that were new. Embed it as a CTE
(``WITH new AS ({CLAIM_SQL}) ...``) to fuse the claim into a statement that locks what the batch
touches. The ids go in sorted, so two transactions claiming overlapping ids queue rather than
deadlock (the order balance's claim-and-lock has always used)."""


async def claim_new(conn: asyncpg.Connection, consumer: str, message_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Record ``message_ids`` for ``consumer``; return the ones that were new."""
    ids = list(dict.fromkeys(message_ids))
    if not ids:
        return set()
    rows = await conn.fetch(CLAIM_SQL, consumer, ids)
    return {row["message_id"] for row in rows}


async def claim(conn: asyncpg.Connection, consumer: str, message_id: uuid.UUID) -> bool:
    """Record one message id; ``True`` when it was new."""
    return bool(await claim_new(conn, consumer, [message_id]))


class Inbox(Protocol):
    """The messages a consumer has already applied (the port; :class:`PgInbox` on PostgreSQL)."""

    async def claim_new(self, consumer: str, message_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Record ``message_ids`` for ``consumer``; return the ones that were new."""
        ...


class PgInbox:
    """The inbox on one connection (a unit of work's): ``await uow.inbox.claim_new(consumer, ids)``."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def claim_new(self, consumer: str, message_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Record ``message_ids`` for ``consumer``; return the ones that were new."""
        return await claim_new(self._conn, consumer, message_ids)


__all__ = ["CLAIM_SQL", "Inbox", "PgInbox", "claim", "claim_new"]
