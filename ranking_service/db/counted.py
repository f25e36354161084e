"""Which completed orders are already counted: the inbox (event ids, purged after the retention
window) and ``counted_orders`` (order ids, kept for good), claimed together in one statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from shared.db.inbox import CLAIM_SQL

# An event counts when its id is new to the inbox AND its order is new to counted_orders. Orders
# go in in id order, so two instances claiming the same order queue on its key (the second then
# sees it taken) instead of deadlocking. The inbox check keeps events counted before
# counted_orders existed from counting again while their inbox rows last.
_CLAIM = f"""
WITH fresh AS ({CLAIM_SQL})
INSERT INTO counted_orders (order_id)
SELECT DISTINCT e.order_id FROM unnest($2::uuid[], $3::text[]) AS e(event_id, order_id)
JOIN fresh f ON f.message_id = e.event_id
ORDER BY e.order_id
ON CONFLICT DO NOTHING
RETURNING order_id
"""


class PgCountedOrders:
    """The ``CountedOrders`` port over a connection (``service.ports``)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def claim(self, consumer: str, events: Sequence[tuple[uuid.UUID, str]]) -> set[str]:
        """Record ``(event_id, order_id)`` pairs; return the order ids to count now (each once)."""
        if not events:
            return set()
        rows = await self._conn.fetch(_CLAIM, consumer, [e for e, _ in events], [o for _, o in events])
        return {row["order_id"] for row in rows}
