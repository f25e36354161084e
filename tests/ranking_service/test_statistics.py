"""Events in -> ranking out, against the real Kafka and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.db.retention import INBOX, purge
from tests.ranking_service.support import (
    SettableClock,
    eventually,
    order,
    publish,
    rewind_group,
    running,
    settings,
    summary,
    top,
)
from tests.support.bad_input import names_field, query_mutations

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _prefix(topic_prefix: str) -> str:
    return f"{topic_prefix}rk{uuid.uuid4().hex[:6]}."


async def test_events_in_ranking_out_with_ties_and_edges(new_database, kafka_bootstrap, topic_prefix) -> None:
    prefix = _prefix(topic_prefix)
    clock = SettableClock(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # 2026-11-24 12:00 KST
    events = [
        order("2026-11-24T01:00:00Z", (1, "one", 3)),
        order("2026-11-23T15:00:00Z", (2, "two", 2), (3, "three", 5)),  # 2026-11-24 00:00 KST
        order("2026-11-23T14:59:59Z", (1, "old name", 2)),  # 2026-11-23 23:59:59 KST
        order("2026-11-21T14:59:59Z", (4, "four", 100)),  # 2026-11-21 in Seoul: 3 days ago
        order("2026-11-21T15:00:00Z", (2, "two", 3)),  # 2026-11-22 00:00 KST: first day of the window
    ]
    cfg = settings(await new_database("ranking"), kafka_bootstrap, prefix)
    async with running(cfg, clock) as client:
        await publish(kafka_bootstrap, prefix, events)
        whole = await eventually(
            lambda: top(client, days=4, limit=10), lambda b: sum(i["quantity_sold"] for i in b["items"]) == 115
        )
        assert summary(whole)[0] == (1, 4, 100, 1)

        body = await top(client, days=3, limit=5)
        assert (body["from"], body["to"]) == ("2026-11-22", "2026-11-24")
        assert body["generated_at"].endswith("Z")
        # a three-way tie at 5, broken by product id; product 4 (3 days ago) is outside
        assert summary(body) == [(1, 1, 5, 2), (2, 2, 5, 2), (3, 3, 5, 1)]
        assert [i["name"] for i in body["items"]] == ["one", "two", "three"]  # the latest name wins

        assert summary(await top(client, days=3, limit=2)) == [(1, 1, 5, 2), (2, 2, 5, 2)]
        today = await top(client, days=1, limit=5)  # midnight KST belongs to the new day
        assert (today["from"], today["to"]) == ("2026-11-24", "2026-11-24")
        assert summary(today) == [(1, 3, 5, 1), (2, 1, 3, 1), (3, 2, 2, 1)]

        clock.now = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # exactly midnight in Seoul: the 24th
        at_midnight = await top(client, days=1)
        assert (at_midnight["from"], at_midnight["to"]) == ("2026-11-24", "2026-11-24")
        assert summary(at_midnight) == summary(today)
        clock.now = datetime(2026, 11, 23, 14, 59, 59, tzinfo=UTC)  # one second before: the 23rd
        before = await top(client, days=1)
        assert (before["from"], before["to"]) == ("2026-11-23", "2026-11-23")
        assert summary(before) == [(1, 1, 2, 1)]
        assert before["items"][0]["name"] == "one"


@pytest.mark.parametrize("query", ["days=0", "days=31", "limit=0", "limit=101", "days=x", "limit=2.5"])
async def test_bad_query_values_are_validation_errors(new_database, kafka_bootstrap, topic_prefix, query) -> None:
    cfg = settings(await new_database("ranking"), kafka_bootstrap, f"{topic_prefix}rkq.")
    async with running(cfg) as client:
        response = await client.get(f"/api/v1/rankings/top-products?{query}")
        assert response.status == 400
        assert response.content_type == "application/problem+json"
        assert (await response.json())["code"] == "VALIDATION_ERROR"


async def test_duplicates_count_once_and_a_restart_replays_nothing_twice(
    new_database, kafka_bootstrap, topic_prefix
) -> None:
    prefix = _prefix(topic_prefix)
    dsn = await new_database("ranking")
    now = datetime.now(UTC).isoformat()
    order_id = str(uuid.uuid4())
    twice = order(now, (7, "seven", 2), order_id=order_id)
    other = order(now, (8, "eight", 1))
    # markers share the duplicate's key, so they are read after it from the same partition
    marker1 = order(now, (90, "marker", 1))
    marker2 = order(now, (91, "marker", 1))
    async with running(settings(dsn, kafka_bootstrap, prefix, "r1")) as client:
        await publish(kafka_bootstrap, prefix, [twice, twice, other], key=order_id)
        await publish(kafka_bootstrap, prefix, [twice, marker1], key=order_id)
        body = await eventually(
            lambda: top(client, days=1, limit=10), lambda b: any(i["product_id"] == 90 for i in b["items"])
        )
        assert summary(body) == [(1, 7, 2, 1), (2, 8, 1, 1), (3, 90, 1, 1)]

    await rewind_group(kafka_bootstrap, prefix)  # as if the offsets had never been committed
    async with running(settings(dsn, kafka_bootstrap, prefix, "r2")) as client:
        await publish(kafka_bootstrap, prefix, [marker2], key=order_id)
        body = await eventually(
            lambda: top(client, days=1, limit=10), lambda b: any(i["product_id"] == 91 for i in b["items"])
        )
        assert summary(body) == [(1, 7, 2, 1), (2, 8, 1, 1), (3, 90, 1, 1), (4, 91, 1, 1)]


async def test_a_late_copy_counts_once_after_the_inbox_forgot_it(new_database, kafka_bootstrap, topic_prefix) -> None:
    """The inbox rows age out (the retention job, 72 h); the same event redelivered, and another
    event of the same order, still count nothing."""
    prefix = _prefix(topic_prefix)
    dsn = await new_database("ranking")
    now = datetime.now(UTC).isoformat()
    order_id = str(uuid.uuid4())
    first = order(now, (7, "seven", 2), order_id=order_id)
    async with running(settings(dsn, kafka_bootstrap, prefix)) as client:
        await publish(kafka_bootstrap, prefix, [first], key=order_id)
        await eventually(lambda: top(client, days=1, limit=10), lambda b: summary(b) == [(1, 7, 2, 1)])
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            await pool.execute("UPDATE inbox SET processed_at = now() - interval '100 hours'")
            assert await purge(pool, INBOX, timedelta(hours=72)) >= 1
            assert await pool.fetchval("SELECT count(*) FROM inbox") == 0
        finally:
            await pool.close()
        again = order(now, (7, "seven", 2), order_id=order_id)  # another event id, the same order
        marker = order(now, (90, "marker", 1))
        await publish(kafka_bootstrap, prefix, [first, again, marker], key=order_id)
        body = await eventually(
            lambda: top(client, days=1, limit=10), lambda b: any(i["product_id"] == 90 for i in b["items"])
        )
        assert summary(body) == [(1, 7, 2, 1), (2, 90, 1, 1)]


async def test_a_cached_answer_shows_new_orders_within_seconds_on_every_instance(
    new_database, kafka_bootstrap, topic_prefix
) -> None:
    prefix = _prefix(topic_prefix)
    dsn = await new_database("ranking")
    async with (
        running(settings(dsn, kafka_bootstrap, prefix, "a", cache_ttl_s=1.0)) as a,
        running(settings(dsn, kafka_bootstrap, prefix, "b", cache_ttl_s=1.0)) as b,
    ):
        for quantity, expected in ((7, (1, 42, 7, 1)), (1, (1, 42, 8, 2))):
            for client in (a, b):  # warm both caches with the current answer
                await top(client, days=1, limit=5)
            started = time.monotonic()
            await publish(kafka_bootstrap, prefix, [order(datetime.now(UTC).isoformat(), (42, "answer", quantity))])
            for client in (a, b):
                await eventually(
                    lambda c=client: top(c, days=1, limit=5),
                    lambda body, e=expected: summary(body)[:1] == [e],
                    timeout=5.0,
                )
            print(f"visible on both instances after {time.monotonic() - started:.2f}s")


async def test_the_routes_are_documented(new_database, kafka_bootstrap, topic_prefix) -> None:
    cfg = settings(await new_database("ranking"), kafka_bootstrap, f"{topic_prefix}rkq.")
    async with running(cfg) as client:
        spec = await (await client.get("/api/docs/openapi.json")).json()
        assert {"/api/v1/rankings/top-products", "/api/v1/admin/rankings/rebuild"} <= set(spec["paths"])
        params = {p["name"] for p in spec["paths"]["/api/v1/rankings/top-products"]["get"]["parameters"]}
        assert params == {"days", "limit"}
        assert set(spec["components"]["schemas"]["TopProductsOut"]["properties"]) == {
            "from",
            "to",
            "generated_at",
            "items",
        }


async def test_huge_integers_and_nul_in_queries_are_400_naming_the_parameter(
    new_database,
    kafka_bootstrap,
    topic_prefix,
) -> None:
    cfg = settings(await new_database("ranking"), kafka_bootstrap, f"{topic_prefix}rkn.")
    async with running(cfg) as client:
        for name, query in query_mutations({"days": "3", "limit": "5"}):
            response = await client.get(f"/api/v1/rankings/top-products?{query}")
            assert response.status == 400 and names_field(await response.json(), name), query
        for name, query in query_mutations({"day": "2026-01-01"}):
            response = await client.post(f"/api/v1/admin/rankings/rebuild?{query}")
            assert response.status == 400 and names_field(await response.json(), name), query
