"""Bounded growth: delete bookkeeping rows older than a retention window, in small batches.

The inbox only needs to remember a message id for as long as the message may still be
redelivered; the window (``retention_hours``, default 72) is far longer than any redelivery.
Deleting in batches keeps locks short while the service is under load.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionRule:
    """Rows of ``table`` whose ``column`` is older than the window are removed, except those for
    which the SQL condition ``unless`` (on the row, as ``table``) holds."""

    table: str
    column: str
    unless: str = ""


INBOX = RetentionRule("inbox", "processed_at")
REPLAYED_DEAD_LETTERS = RetentionRule("dead_letters", "replayed_at")
"""A dead letter delivered again (replayed) is history; one never replayed (``replayed_at`` NULL)
waits for an operator however old it is, and is never purged."""


async def purge(pool: asyncpg.Pool, rule: RetentionRule, window: timedelta, batch: int = 5000) -> int:
    """Delete what is older than ``window``; return how many rows went."""
    kept = f" AND NOT ({rule.unless})" if rule.unless else ""
    sql = (
        f"DELETE FROM {rule.table} WHERE ctid = ANY(ARRAY("
        f"SELECT ctid FROM {rule.table} WHERE {rule.column} < now() - $1::interval{kept} LIMIT $2))"
    )
    total = 0
    while True:
        status = await pool.execute(sql, window, batch)
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < batch:
            return total


async def run_retention(
    pool: asyncpg.Pool,
    rules: list[RetentionRule | tuple[RetentionRule, timedelta]],
    window: timedelta,
    interval_s: float = 300.0,
) -> None:
    """Purge every rule now and then every ``interval_s``, until cancelled; a rule given as
    ``(rule, its_window)`` keeps its rows for its own window instead of ``window``."""
    windowed = [item if isinstance(item, tuple) else (item, window) for item in rules]
    while True:
        for rule, kept in windowed:
            try:
                deleted = await purge(pool, rule, kept)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("retention purge failed", extra={"table": rule.table, "error": repr(exc)})
                continue
            if deleted:
                log.info("retention purge", extra={"table": rule.table, "deleted": deleted})
        await asyncio.sleep(interval_s)
