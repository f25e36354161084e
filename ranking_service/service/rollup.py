"""The daily batch: roll each closed day's statistics up into its ranking snapshot, once.

A scheduled run claims the day in ``batch_runs`` under the day's advisory lock, in the same
transaction as the snapshot, so with several instances exactly one rolls each day up. A rebuild
(on demand) waits for the lock and recomputes the day whatever ran before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum

from ranking_service.db import batch
from ranking_service.db.sales import top_sales
from ranking_service.domain.errors import InvalidRebuildDayError
from ranking_service.domain.ranking import rank
from ranking_service.domain.schedule import batch_today, days_due
from ranking_service.service.context import Ranking
from shared.db.uow import UnitOfWork

log = logging.getLogger(__name__)


class Outcome(Enum):
    RAN = "ran"
    ALREADY_DONE = "already_done"
    BUSY = "busy"  # another instance holds the day's lock right now


async def _snapshot(ctx: Ranking, uow: UnitOfWork, day: date) -> int:
    ranked = rank(await top_sales(uow.conn, day, day, ctx.snapshot_size), ctx.snapshot_size)
    await batch.save_snapshot(uow.conn, day, ranked)
    return len(ranked)


async def roll_up_day(ctx: Ranking, day: date) -> Outcome:
    """The scheduled rollup of ``day``: at most once, by whichever instance gets there first."""
    async with UnitOfWork(ctx.pool) as uow:
        if not await batch.try_lock_day(uow.conn, day):
            return Outcome.BUSY
        if not await batch.claim_day(uow.conn, day, ctx.instance_id):
            return Outcome.ALREADY_DONE
        products = await _snapshot(ctx, uow, day)
        await uow.commit()
    log.info("day rolled up", extra={"day": day.isoformat(), "products": products})
    return Outcome.RAN


@dataclass
class CatchUp:
    """What one pass over the due days did."""

    ran: list[date] = field(default_factory=list)
    busy: list[date] = field(default_factory=list)


async def catch_up(ctx: Ranking, today: date) -> CatchUp:
    """Roll up every closed day (bounded by ``catch_up_days``) that has no run yet."""
    async with ctx.pool.acquire() as conn:
        done = await batch.done_days(conn, today - timedelta(days=ctx.catch_up_days))
    result = CatchUp()
    for day in days_due(today, done, ctx.catch_up_days):
        outcome = await roll_up_day(ctx, day)
        if outcome is Outcome.RAN:
            result.ran.append(day)
        elif outcome is Outcome.BUSY:
            result.busy.append(day)
    return result


@dataclass(frozen=True)
class Rebuilt:
    day: date
    products: int
    caught_up: list[date]


async def rebuild(ctx: Ranking, day: date | None) -> Rebuilt:
    """Run the batch now: catch up missed days, then recompute ``day`` (default: yesterday)."""
    today = batch_today(ctx.clock(), ctx.tz, ctx.batch_delay_s)
    target = day or today - timedelta(days=1)
    if not today - timedelta(days=ctx.catch_up_days) <= target < today:
        raise InvalidRebuildDayError(
            f"day must be a closed day within the last {ctx.catch_up_days} days (before {today.isoformat()})"
        )
    caught = await catch_up(ctx, today)
    async with UnitOfWork(ctx.pool) as uow:
        await batch.lock_day(uow.conn, target)
        await batch.mark_rebuilt(uow.conn, target, ctx.instance_id)
        products = await _snapshot(ctx, uow, target)
        await uow.commit()
    ctx.cache.clear()
    return Rebuilt(target, products, [d for d in caught.ran if d != target])
