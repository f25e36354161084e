"""The inbox: which messages a consumer has already applied.

Call :func:`claim_new` inside the transaction that applies the effects: it records the ids and
returns those not seen before. A redelivered message is then recognised and skipped, and since
the record and the effects commit together, a crash in between leaves neither.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import asyncpg

_CLAIM = """
INSERT INTO inbox (consumer, message_id)
SELECT $1, id FROM unnest($2::uuid[]) AS u(id)
ON CONFLICT DO NOTHING
RETURNING message_id
"""


async def claim_new(conn: asyncpg.Connection, consumer: str, message_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Record ``message_ids`` for ``consumer``; return the ones that were new."""
    ids = list(dict.fromkeys(message_ids))
    if not ids:
        return set()
    rows = await conn.fetch(_CLAIM, consumer, ids)
    return {row["message_id"] for row in rows}


async def claim(conn: asyncpg.Connection, consumer: str, message_id: uuid.UUID) -> bool:
    """Record one message id; ``True`` when it was new."""
    return bool(await claim_new(conn, consumer, [message_id]))
