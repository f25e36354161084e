"""The daily rollup's tables: ``batch_runs`` (which days are done) and ``ranking_snapshots``.

Every rollup of a day runs in a transaction holding a per-day advisory lock, so two instances
never roll up the same day at once; the ``batch_runs`` row is written in that same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

from ranking_service.domain.model import ProductSales, RankedProduct

_LOCK_CLASS = 0x52414E4B  # "RANK": the advisory lock namespace of the rollup (objid = day ordinal)

_CLAIM_DAY = """
INSERT INTO batch_runs (day, ran_at, instance_id, products) VALUES ($1, now(), $2, 0)
ON CONFLICT (day) DO NOTHING RETURNING day
"""

_REBUILT_DAY = """
INSERT INTO batch_runs (day, ran_at, instance_id, products) VALUES ($1, now(), $2, 0)
ON CONFLICT (day) DO UPDATE SET ran_at = now(), instance_id = $2, runs = batch_runs.runs + 1
"""

_SAVE_SNAPSHOT = """
INSERT INTO ranking_snapshots (day, rank, product_id, name, quantity, order_count)
SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[])
"""


class PgBatchRuns:
    """The ``BatchRuns`` port over a connection (``service.ports``)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def try_lock(self, day: date) -> bool:
        """Take the day's rollup lock for this transaction, or ``False`` when another holds it."""
        return bool(await self._conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", _LOCK_CLASS, day.toordinal()))

    async def lock(self, day: date) -> None:
        """Wait for the day's rollup lock (for an on-demand rebuild)."""
        await self._conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_CLASS, day.toordinal())

    async def claim(self, day: date, instance_id: str) -> bool:
        """Record the scheduled run of ``day``; ``False`` when it already ran."""
        return await self._conn.fetchval(_CLAIM_DAY, day, instance_id) is not None

    async def mark_rebuilt(self, day: date, instance_id: str) -> None:
        await self._conn.execute(_REBUILT_DAY, day, instance_id)

    async def done_since(self, since: date) -> list[date]:
        """The days rolled up from ``since`` on."""
        return [r["day"] for r in await self._conn.fetch("SELECT day FROM batch_runs WHERE day >= $1", since)]


class PgSnapshots:
    """The ``Snapshots`` port over a connection (``service.ports``)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def save(self, day: date, ranked: Sequence[RankedProduct]) -> None:
        """Replace the snapshot of ``day`` and note its size in ``batch_runs``."""
        await self._conn.execute("DELETE FROM ranking_snapshots WHERE day = $1", day)
        if ranked:
            await self._conn.execute(
                _SAVE_SNAPSHOT,
                day,
                [r.rank for r in ranked],
                [r.sales.product_id for r in ranked],
                [r.sales.name for r in ranked],
                [r.sales.quantity_sold for r in ranked],
                [r.sales.order_count for r in ranked],
            )
        await self._conn.execute("UPDATE batch_runs SET products = $2 WHERE day = $1", day, len(ranked))

    async def get(self, day: date) -> list[RankedProduct]:
        """The frozen ranking of ``day``, best first."""
        rows = await self._conn.fetch("SELECT * FROM ranking_snapshots WHERE day = $1 ORDER BY rank", day)
        return [
            RankedProduct(r["rank"], ProductSales(r["product_id"], r["name"], r["quantity"], r["order_count"]))
            for r in rows
        ]
