"""Gauges that need the database: refreshed by a slow periodic task, or read at scrape time
from memory, never computed on a hot path.

- :class:`PoolCollector`: the asyncpg pool's connections (in use, idle, max), read at scrape
  time from the pool object (no IO).
- :func:`run_probes`: every ``interval_s`` runs each probe (one small query each) on a pool
  connection and lets it set its gauges; a failing probe is logged and retried next round, and
  its gauges keep their last value (the ``..._refreshed_timestamp_seconds`` gauge tells how old).
- :func:`outbox_probe`: rows waiting in the outbox and the age of the oldest (every service).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

import asyncpg
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

Probe = Callable[[asyncpg.Connection], Awaitable[None]]


class PoolCollector(Collector):
    """``db_pool_connections{state="in_use|idle"}`` and ``db_pool_max_connections`` at scrape time."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        used = GaugeMetricFamily("db_pool_connections", "Connections of the asyncpg pool", labels=["state"])
        used.add_metric(["in_use"], size - idle)
        used.add_metric(["idle"], idle)
        yield used
        yield GaugeMetricFamily(
            "db_pool_max_connections", "Size limit of the asyncpg pool", value=self._pool.get_max_size()
        )


def outbox_probe(registry: CollectorRegistry) -> Probe:
    """``outbox_rows_waiting`` and ``outbox_oldest_row_age_seconds`` (0 when the outbox is empty)."""
    waiting = Gauge("outbox_rows_waiting", "Outbox rows not yet published to Kafka", registry=registry)
    oldest = Gauge(
        "outbox_oldest_row_age_seconds", "Age of the oldest unpublished outbox row (0 when empty)", registry=registry
    )

    async def probe(conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0) AS age FROM outbox"
        )
        waiting.set(row["n"])
        oldest.set(max(float(row["age"]), 0.0))

    return probe


async def run_probes(
    pool: asyncpg.Pool, probes: Sequence[Probe], registry: CollectorRegistry, interval_s: float
) -> None:
    """Refresh the probes' gauges every ``interval_s`` until cancelled."""
    refreshed = Gauge(
        "db_gauges_refreshed_timestamp_seconds",
        "When the database-backed gauges were last refreshed (Unix time)",
        registry=registry,
    )
    while True:
        try:
            async with pool.acquire() as conn:
                for probe in probes:
                    await probe(conn)
            refreshed.set(time.time())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("metrics probe failed", extra={"error": repr(exc)})
        await asyncio.sleep(interval_s)
