"""The daily batch: roll each closed day's statistics up into its ranking snapshot, once.

A scheduled run claims the day in ``batch_runs`` under the day's lock, in the same transaction
as the snapshot, so with several instances exactly one rolls each day up. ``post_rebuild`` (on
demand) waits for the lock and recomputes the day whatever ran before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from enum import Enum

from ranking_service.domain.commands import PostRebuild
from ranking_service.domain.model import BatchRules, rank
from ranking_service.service.cache import AnswerCache
from ranking_service.service.ports import Clock, UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


class Outcome(Enum):
    RAN = "ran"
    ALREADY_DONE = "already_done"
    BUSY = "busy"  # another instance holds the day's lock right now


async def _snapshot(uow: UnitOfWork, rules: BatchRules, day: date) -> int:
    ranked = rank(await uow.sales.top(day, day, rules.snapshot_size), rules.snapshot_size)
    await uow.snapshots.save(day, ranked)
    return len(ranked)


async def roll_up_day(uow: UnitOfWorkFactory, rules: BatchRules, instance_id: str, day: date) -> Outcome:
    """The scheduled rollup of ``day``: at most once, by whichever instance gets there first."""
    async with uow() as tx:
        if not await tx.batch_runs.try_lock(day):
            return Outcome.BUSY
        if not await tx.batch_runs.claim(day, instance_id):
            return Outcome.ALREADY_DONE
        products = await _snapshot(tx, rules, day)
        await tx.commit()
    log.info("day rolled up", extra={"day": day.isoformat(), "products": products})
    return Outcome.RAN


@dataclass
class CatchUp:
    """What one pass over the due days did."""

    ran: list[date] = field(default_factory=list)
    busy: list[date] = field(default_factory=list)


async def catch_up(uow: UnitOfWorkFactory, rules: BatchRules, instance_id: str, today: date) -> CatchUp:
    """Roll up every closed day (bounded by ``catch_up_days``) that has no run yet."""
    async with uow(single_statement=True) as reader:
        done = await reader.batch_runs.done_since(rules.oldest(today))
    result = CatchUp()
    for day in rules.due(today, done):
        outcome = await roll_up_day(uow, rules, instance_id, day)
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


async def post_rebuild(
    uow: UnitOfWorkFactory, cache: AnswerCache, clock: Clock, rules: BatchRules, instance_id: str, cmd: PostRebuild
) -> Rebuilt:
    """Run the batch now: catch up missed days, then recompute ``cmd.day`` (default: yesterday)."""
    today = rules.today(clock())
    target = rules.rebuild_day(today, cmd.day)
    caught = await catch_up(uow, rules, instance_id, today)
    async with uow() as tx:
        await tx.batch_runs.lock(target)
        await tx.batch_runs.mark_rebuilt(target, instance_id)
        products = await _snapshot(tx, rules, target)
        await tx.commit()
    cache.clear()
    return Rebuilt(target, products, [d for d in caught.ran if d != target])
