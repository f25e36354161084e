"""The order flow's metrics (outcomes, saga and step latency, timeouts, unfinished sagas, outbox,
pool, process) on /metrics, against real PostgreSQL and Kafka with scripted participants."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from order_service.app import create_app
from tests.order_service.support import HOLD, SILENT, eventually, fail
from tests.order_service.test_saga_scripted import Env, env, order_body, place  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def scrape(client: TestClient) -> dict[tuple[str, tuple], float]:
    text = await (await client.get("/metrics")).text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_outcomes_durations_and_steps_are_counted(env: Env) -> None:
    before = await scrape(env.client)
    ok_user, failing_user = env.user(), env.user()
    env.parts.script(failing_user, DeductStock=fail("OUT_OF_STOCK"))
    assert (await place(env.client, order_body(ok_user, coupon=None)))[0] == 201
    assert (await place(env.client, order_body(failing_user, coupon=None)))[0] == 409

    # The consumer records the metrics right after its COMMIT, which is also when the waiting POST is
    # woken: the scrape may come first, so wait until both outcomes are in, then check every count.
    async def settled() -> dict | None:
        samples = await scrape(env.client)
        outcomes = (("COMPLETED", ""), ("FAILED", "OUT_OF_STOCK"))
        done = [
            value(samples, "orders_finished_total", status=status, failure_code=code)
            > value(before, "orders_finished_total", status=status, failure_code=code)
            for status, code in outcomes
        ]
        return samples if all(done) else None

    after = await eventually(settled)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("orders_finished_total", status="COMPLETED", failure_code="") == 1
    assert grew("orders_finished_total", status="FAILED", failure_code="OUT_OF_STOCK") == 1
    assert grew("saga_duration_seconds_count", status="COMPLETED") == 1
    assert grew("saga_duration_seconds_count", status="FAILED") == 1
    assert grew("saga_step_duration_seconds_count", step="DEDUCTING_BALANCE", result="ok") == 2
    assert grew("saga_step_duration_seconds_count", step="DEDUCTING_STOCK", result="ok") == 1
    assert grew("saga_step_duration_seconds_count", step="DEDUCTING_STOCK", result="failed") == 1
    assert grew("saga_step_duration_seconds_count", step="COMPENSATING", result="ok") == 1
    assert grew("saga_duration_seconds_sum", status="COMPLETED") > 0


async def test_timeouts_are_counted_by_step(env: Env) -> None:
    user = env.user()
    env.parts.script(user, DeductBalance=SILENT)
    before = value(await scrape(env.client), "saga_step_timeouts_total", step="DEDUCTING_BALANCE")
    assert (await place(env.client, order_body(user, coupon=None)))[0] == 409
    after = value(await scrape(env.client), "saga_step_timeouts_total", step="DEDUCTING_BALANCE")
    assert after - before == 3


async def test_periodic_gauges_pool_and_process_collectors(env: Env) -> None:
    other = TestClient(
        TestServer(create_app(env.settings(metrics_refresh_interval_s=0.2, saga_workers=False, instance_id="gauges")))
    )
    await other.start_server()
    try:
        user = env.user()
        env.parts.script(user, DeductStock=HOLD)
        status, _body, _ = await place(env.client, order_body(user, coupon=None), Prefer="respond-async")
        assert status == 202

        async def holding() -> dict | None:
            samples = await scrape(other)
            return samples if value(samples, "sagas_unfinished", step="DEDUCTING_STOCK") >= 1 else None

        samples = await eventually(holding)
        assert value(samples, "saga_oldest_unfinished_age_seconds") > 0
        assert ("sagas_unfinished", (("step", "COMPENSATING"),)) in samples  # every step, 0 included
        assert ("outbox_rows_waiting", ()) in samples and ("outbox_oldest_row_age_seconds", ()) in samples
        assert value(samples, "db_gauges_refreshed_timestamp_seconds") > 0
        assert value(samples, "db_pool_max_connections") == 10
        assert ("db_pool_connections", (("state", "idle"),)) in samples
        assert value(samples, "process_cpu_seconds_total") > 0 and value(samples, "process_resident_memory_bytes") > 0
        assert any(name == "python_info" for name, _ in samples)
        assert any(name == "python_gc_collections_total" for name, _ in samples)
        await env.parts.answer_held()

        async def drained() -> bool:
            return value(await scrape(other), "sagas_unfinished", step="DEDUCTING_STOCK") == 0

        await eventually(drained)
    finally:
        await other.close()


async def test_outbox_backlog_shows_while_kafka_is_unreachable(env: Env, new_database) -> None:
    """An instance whose broker is unreachable keeps its commands in the outbox: the gauges show them."""
    dsn = await new_database("order")
    cut_off = TestClient(
        TestServer(
            create_app(
                env.settings(
                    database_url=dsn,
                    kafka_bootstrap="127.0.0.1:1",
                    metrics_refresh_interval_s=0.2,
                    saga_workers=False,
                    instance_id="cut-off",
                    kafka_send_timeout_s=1.0,
                )
            )
        )
    )
    await cut_off.start_server()  # a service starts, and answers, while Kafka is down
    try:
        user = env.user()
        status, _, _ = await place(cut_off, order_body(user, coupon=None), Prefer="respond-async")
        assert status == 202

        async def waiting() -> dict | None:
            samples = await scrape(cut_off)
            return samples if value(samples, "outbox_rows_waiting") >= 1 else None

        samples = await eventually(waiting)
        assert value(samples, "outbox_oldest_row_age_seconds") >= 0
    finally:
        await cut_off.close()
