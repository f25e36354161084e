"""The daily batch against the real PostgreSQL and Kafka: once per day across instances, catch-up, rebuild."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from tests.ranking_service.support import (
    SettableClock,
    eventually,
    order,
    publish,
    running,
    scheduler,
    settings,
    summary,
    top,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

NOV = lambda d: date(2026, 11, d)  # noqa: E731


async def _runs(dsn: str) -> dict[date, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r["day"]: r["runs"] for r in await conn.fetch("SELECT day, runs FROM batch_runs")}
    finally:
        await conn.close()


async def _counted(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM daily_product_sales")
    finally:
        await conn.close()


async def _snapshot(dsn: str, day: date) -> list[tuple[int, int, int, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT * FROM ranking_snapshots WHERE day = $1 ORDER BY rank", day)
        return [(r["rank"], r["product_id"], r["quantity"], r["order_count"]) for r in rows]
    finally:
        await conn.close()


async def test_two_instances_run_the_batch_once_per_day(new_database, kafka_bootstrap, topic_prefix) -> None:
    prefix = f"{topic_prefix}rkb{uuid.uuid4().hex[:6]}."
    dsn = await new_database("ranking")
    clock = SettableClock(datetime(2026, 11, 24, 14, 59, 58, tzinfo=UTC))  # 2026-11-24 23:59:58 KST
    async with (
        running(settings(dsn, kafka_bootstrap, prefix, "a", batch_interval_s=0.2), clock) as a,
        running(settings(dsn, kafka_bootstrap, prefix, "b", batch_interval_s=0.2), clock) as b,
    ):
        await publish(
            kafka_bootstrap,
            prefix,
            [
                order("2026-11-24T14:59:59Z", (1, "one", 3)),  # the last second of the 24th in Seoul
                order("2026-11-24T05:00:00Z", (2, "two", 1), (1, "one", 1)),
            ],
        )
        await eventually(lambda: top(a, days=1), lambda body: len(body["items"]) == 2)

        # at start both catch up the 30 closed days before the 24th; each day runs on one instance
        await eventually(_both_settled(a, b), lambda settled: settled == {NOV(24)})
        catch_up = [NOV(24) - timedelta(days=n) for n in range(30, 0, -1)]
        assert sorted(scheduler(a).rolled_up + scheduler(b).rolled_up) == catch_up
        assert await _runs(dsn) == dict.fromkeys(catch_up, 1)

        clock.now = datetime(2026, 11, 24, 15, 0, 1, tzinfo=UTC)  # 2026-11-25 00:00:01 KST
        await eventually(_both_settled(a, b), lambda settled: settled == {NOV(25)})
        ran_24 = [s for s in (scheduler(a), scheduler(b)) if NOV(24) in s.rolled_up]
        assert len(ran_24) == 1 and ran_24[0].rolled_up.count(NOV(24)) == 1
        assert (await _runs(dsn))[NOV(24)] == 1
        assert await _snapshot(dsn, NOV(24)) == [(1, 1, 4, 2), (2, 2, 1, 1)]

        # the on-demand batch recomputes the day (and changes nothing else)
        response = await b.post("/api/v1/admin/rankings/rebuild")
        assert response.status == 200
        assert await response.json() == {"day": "2026-11-24", "products": 2, "caught_up": []}
        assert (await _runs(dsn))[NOV(24)] == 2
        assert await _snapshot(dsn, NOV(24)) == [(1, 1, 4, 2), (2, 2, 1, 1)]
        for bad in ("day=2026-11-25", "day=2026-10-01", "day=yesterday"):
            response = await a.post(f"/api/v1/admin/rankings/rebuild?{bad}")
            assert response.status == 400, bad
            assert (await response.json())["code"] == "VALIDATION_ERROR"


def _both_settled(a, b):  # type: ignore[no-untyped-def]
    async def probe() -> set[date | None]:
        return {scheduler(a).settled_for, scheduler(b).settled_for}

    return probe


async def test_days_missed_while_down_are_caught_up_at_start(new_database, kafka_bootstrap, topic_prefix) -> None:
    prefix = f"{topic_prefix}rkc{uuid.uuid4().hex[:6]}."
    dsn = await new_database("ranking")
    clock = SettableClock(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # 2026-11-24 12:00 KST
    cfg = settings(dsn, kafka_bootstrap, prefix, "a", batch_interval_s=0.2, batch_catch_up_days=5)
    async with running(cfg, clock) as app:
        await publish(kafka_bootstrap, prefix, [order("2026-11-25T01:00:00Z", (5, "five", 2))])
        # dated after this clock's today: counted, but not yet in any window
        await eventually(lambda: _counted(dsn), lambda rows: rows == 1)
        assert (await top(app, days=30))["items"] == []
        await eventually(lambda: _settled(app), lambda day: day == NOV(24))
        assert scheduler(app).rolled_up == [NOV(19), NOV(20), NOV(21), NOV(22), NOV(23)]

    clock.now = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)  # down for four days
    async with running(cfg, clock) as app:
        await eventually(lambda: _settled(app), lambda day: day == NOV(28))
        assert scheduler(app).rolled_up == [NOV(24), NOV(25), NOV(26), NOV(27)]
        assert await _snapshot(dsn, NOV(25)) == [(1, 5, 2, 1)]
        assert summary(await top(app, days=4)) == [(1, 5, 2, 1)]
    assert set(await _runs(dsn)) == {NOV(d) for d in range(19, 28)}


async def _settled(app):  # type: ignore[no-untyped-def]
    return scheduler(app).settled_for
