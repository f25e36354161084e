"""The daily rollup's tables: ``batch_runs`` (which days are done) and ``ranking_snapshots``.

Every rollup of a day runs in a transaction holding a per-day advisory lock, so two instances
never roll up the same day at once; the ``batch_runs`` row is written in that same transaction.
"""

from __future__ import annotations

from datetime import date

import asyncpg

from ranking_service.domain.ranking import RankedProduct

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


async def try_lock_day(conn: asyncpg.Connection, day: date) -> bool:
    """Take the day's rollup lock for this transaction, or ``False`` when another holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, $2)", _LOCK_CLASS, day.toordinal()))


async def lock_day(conn: asyncpg.Connection, day: date) -> None:
    """Wait for the day's rollup lock (for an on-demand rebuild)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_CLASS, day.toordinal())


async def claim_day(conn: asyncpg.Connection, day: date, instance_id: str) -> bool:
    """Record the scheduled run of ``day``; ``False`` when it already ran."""
    return await conn.fetchval(_CLAIM_DAY, day, instance_id) is not None


async def mark_rebuilt(conn: asyncpg.Connection, day: date, instance_id: str) -> None:
    await conn.execute(_REBUILT_DAY, day, instance_id)


async def done_days(conn: asyncpg.Connection, since: date) -> list[date]:
    """The days rolled up from ``since`` on."""
    return [r["day"] for r in await conn.fetch("SELECT day FROM batch_runs WHERE day >= $1", since)]


async def save_snapshot(conn: asyncpg.Connection, day: date, ranked: list[RankedProduct]) -> None:
    """Replace the snapshot of ``day`` and note its size in ``batch_runs``."""
    await conn.execute("DELETE FROM ranking_snapshots WHERE day = $1", day)
    if ranked:
        await conn.execute(
            _SAVE_SNAPSHOT,
            day,
            [r.rank for r in ranked],
            [r.sales.product_id for r in ranked],
            [r.sales.name for r in ranked],
            [r.sales.quantity_sold for r in ranked],
            [r.sales.order_count for r in ranked],
        )
    await conn.execute("UPDATE batch_runs SET products = $2 WHERE day = $1", day, len(ranked))


async def snapshot(conn: asyncpg.Connection, day: date) -> list[asyncpg.Record]:
    """The frozen ranking of ``day``, best first."""
    return await conn.fetch("SELECT * FROM ranking_snapshots WHERE day = $1 ORDER BY rank", day)
