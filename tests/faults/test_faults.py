"""Faults under a steady order load: kill, cut, restart, duplicate, freeze; nothing lost.

After each fault: every order reaches COMPLETED or FAILED within a bound; money, stock and coupons
add up; one ``order.completed`` per completed order (by order id and by event id); while a
service was down, the gateway answered 503/504 within its timeout and never hung.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from shared.events.saga import (
    DeductBalance, DeductStock, RefundBalance, ReleaseCoupon, ReserveCoupon, RestoreStock, StockLine,
)
from shared.messaging.envelope import Message, Outgoing
from tests.faults.conftest import SAGA_ENV
from bench.invariants import check_invariants
from bench.load import Api, OrderLoad, RunData
from tests.faults.harness import (
    GATEWAY_TIMEOUT_S, ORDER_CREATE_TIMEOUT_S, SERVICES, FaultCluster, Probe, Row, read_events, settle,
    status_summary,
)
from tests.support.infra import PrivateBroker, PrivatePostgres
from tests.support.kafka import produce

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.timeout(240)]

RATE = 4.0  # orders/s through the gateway
SETTLE_BOUND_S = 60.0  # every order finished within this after the fault ends
GATEWAY_SLACK_S = 1.5
FAULT_STATUSES = {200, 503, 504}  # what the gateway may answer for a service that is down or frozen
ORDER_STATUSES = {201, 202, 409, 503, 504}

Fault = Callable[[FaultCluster, RunData], Awaitable[None]]


async def run_fault(name: str, api: Api, cluster: FaultCluster, rows: list[Row], fault: Fault, *,
                    watched: tuple[str, ...], before_s: float = 3.0, after_s: float = 2.0) -> None:
    load = OrderLoad(cluster.gateway, cluster.admin_token, users=6, products=3, rate=RATE, max_in_flight=40,
                     coupon_kinds=1, items_per_order=2, stock=100_000, balance=5_000_000,
                     settle_timeout=SETTLE_BOUND_S, request_timeout=ORDER_CREATE_TIMEOUT_S + 10)
    probe: Probe | None = None
    try:
        run = await load.setup()
        probe = Probe(api, run)
        probe.start()
        load.start()
        await asyncio.sleep(before_s)
        fault_start = time.monotonic()
        await fault(cluster, run)
        fault_end = time.monotonic()
        in_flight = load.in_flight
        await asyncio.sleep(after_s)
        await load.stop()  # waits for every order in flight to be final (or SETTLE_BOUND_S)
        await probe.stop()
        await settle(api, run, SETTLE_BOUND_S)
        recovery_s = time.monotonic() - fault_end
        problems = await check_invariants(cluster.state_dir / "cluster.json", load.run_data(),
                                          settle_timeout=SETTLE_BOUND_S)
    finally:
        await load.stop(drain=False)  # after a failure: stop issuing before the session closes
        if probe is not None:
            await probe.stop()
        await load.close()

    during = probe.during(fault_start, fault_end, watched)
    max_latency = max([s[3] for s in during] + [0.0])
    records = load.records
    posts = [r for r in records if fault_start <= load._t0 + r.started <= fault_end]
    gateway_problems = []
    bad = sorted({s[2] for s in during} - FAULT_STATUSES)
    if bad:
        gateway_problems.append(f"gateway answered {bad} for {watched} during the fault")
    if max_latency > GATEWAY_TIMEOUT_S + GATEWAY_SLACK_S:
        gateway_problems.append(f"gateway took {max_latency:.1f}s for {watched} during the fault")
    bad_posts = sorted({(r.http_status, r.failure_code) for r in records if r.http_status not in ORDER_STATUSES},
                       key=str)
    if bad_posts:
        gateway_problems.append(f"POST /orders answered {bad_posts}")
    completed = sum(1 for r in records if r.status == "COMPLETED")
    failed = sum(1 for r in records if r.status == "FAILED")
    rows.append(Row(name, in_flight, completed, failed, "ok" if not problems else f"{len(problems)} broken",
                    recovery_s, max_latency,
                    f"{status_summary(during)}; POST {status_summary([(0, '', r.http_status or 0, 0) for r in posts])}"))
    assert records, "the load placed no order"
    assert completed > 0, "no order completed at all"
    assert not problems + gateway_problems, "\n".join(problems + gateway_problems)


def kill(service: str) -> Fault:
    async def fault(cluster: FaultCluster, run: RunData) -> None:
        await asyncio.to_thread(cluster.signal, f"{service}-0", "KILL")
        await asyncio.sleep(3)  # one instance down: the other serves
        await asyncio.to_thread(cluster.signal, service, "KILL")
        await asyncio.sleep(4)  # every instance down: 503 at once
        await asyncio.to_thread(cluster.start, service)

    return fault


@pytest.mark.asyncio
@pytest.mark.parametrize("service", SERVICES)
async def test_sigkill_one_then_all_instances(service: str, fault_api: Api, fault_cluster: FaultCluster,
                                              rows: list[Row]) -> None:
    await run_fault(f"SIGKILL {service} (1, then 2 of 2)", fault_api, fault_cluster, rows, kill(service),
                    watched=(service,))


@pytest.mark.asyncio
async def test_kafka_broker_down_20s(fault_api: Api, fault_cluster: FaultCluster, faults_broker: PrivateBroker,
                                     rows: list[Row]) -> None:
    async def fault(cluster: FaultCluster, run: RunData) -> None:
        await asyncio.to_thread(faults_broker.stop)
        await asyncio.sleep(20)
        await asyncio.to_thread(faults_broker.start)

    # the HTTP routes need no broker: every service keeps answering (200), none hangs
    await run_fault("Kafka broker stopped 20 s", fault_api, fault_cluster, rows, fault, watched=SERVICES)


@pytest.mark.asyncio
async def test_postgres_restart(fault_api: Api, fault_cluster: FaultCluster, private_pg: PrivatePostgres,
                                rows: list[Row]) -> None:
    async def fault(cluster: FaultCluster, run: RunData) -> None:
        await asyncio.to_thread(private_pg.stop)
        await asyncio.sleep(3)
        await asyncio.to_thread(private_pg.start)

    await run_fault("PostgreSQL restarted (3 s down)", fault_api, fault_cluster, rows, fault, watched=SERVICES)


SAGA_TOPICS = ("saga.coupon.commands", "saga.balance.commands", "saga.stock.commands", "saga.replies")


def _record(topic: str, key: str, message: Message) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    out = Outgoing(topic, key, message)
    return topic, key.encode(), out.value(), [(k, v.encode()) for k, v in out.headers().items()]


@pytest.mark.asyncio
async def test_saga_messages_twice_and_out_of_order(fault_api: Api, fault_cluster: FaultCluster,
                                                    rows: list[Row]) -> None:
    fenced: dict[str, int | str] = {}

    async def fault(cluster: FaultCluster, run: RunData) -> None:
        records = []
        for base in SAGA_TOPICS:
            records.extend(await read_events(cluster.kafka_bootstrap, cluster.topic(base)))
        copies = []
        for r in reversed(records):  # newest first: replies before their commands, compensations first
            headers = list(r.headers or ())
            copies.append((r.topic, r.key, r.value, headers))  # same event id
            value = json.loads(r.value)
            value["event_id"] = str(uuid.uuid4())
            renewed = [(k, value["event_id"].encode() if k == "event-id" else v) for k, v in headers]
            copies.append((r.topic, r.key, json.dumps(value).encode(), renewed))  # new event id
        # a compensation before its forward command, for fresh order ids: the forward one must be refused
        user = run.user_ids[0]
        product = run.product_ids[0]
        order_a, order_b, order_c = (str(uuid.uuid4()) for _ in range(3))
        t = cluster.topic
        copies += [
            _record(t("saga.balance.commands"), order_a, RefundBalance(order_id=order_a)),
            _record(t("saga.balance.commands"), order_a, DeductBalance(order_id=order_a, user_id=user, amount=777)),
            _record(t("saga.stock.commands"), order_b, RestoreStock(order_id=order_b)),
            _record(t("saga.stock.commands"), order_b,
                    DeductStock(order_id=order_b, lines=[StockLine(product_id=product, quantity=3)])),
        ]
        coupon_user, owned = next((u, ids) for u, ids in run.user_coupons.items() if ids)
        user_coupon = owned[-1]
        if True:
            copies += [
                _record(t("saga.coupon.commands"), order_c, ReleaseCoupon(order_id=order_c)),
                _record(t("saga.coupon.commands"), order_c, ReserveCoupon(
                    order_id=order_c, user_id=coupon_user, user_coupon_id=user_coupon, order_amount=100_000)),
            ]
        fenced.update(user=user, order_a=order_a, coupon_user=coupon_user, user_coupon=user_coupon)
        await produce(cluster.kafka_bootstrap, copies)
        await asyncio.sleep(3)

    # the fence orders take nothing: the money, stock and coupon checks of the load's users catch it
    await run_fault("saga messages twice + reversed", fault_api, fault_cluster, rows, fault, watched=SERVICES)
    history = (await fault_api.ok("GET", f"/api/v1/users/{fenced['user']}/balance/history?limit=100"))["items"]
    assert not [h for h in history if h["order_id"] == fenced["order_a"]], "a fenced DeductBalance took money"
    owned = (await fault_api.ok("GET", f"/api/v1/users/{fenced['coupon_user']}/coupons?status=ALL"))["items"]
    status = next(c["status"] for c in owned if c["user_coupon_id"] == fenced["user_coupon"])
    assert status in ("AVAILABLE", "USED"), f"a fenced ReserveCoupon left the coupon {status}"


@pytest.mark.asyncio
async def test_participant_slower_than_saga_deadline(fault_api: Api, fault_cluster: FaultCluster,
                                                     rows: list[Row]) -> None:
    deadline = float(SAGA_ENV["ORDER_SAGA_STEP_TIMEOUT_S"]) * int(SAGA_ENV["ORDER_SAGA_MAX_ATTEMPTS"])

    async def fault(cluster: FaultCluster, run: RunData) -> None:
        await asyncio.to_thread(cluster.signal, "balance", "STOP")
        try:
            await asyncio.sleep(deadline + 4)  # every attempt's deadline passes while balance is frozen
        finally:
            await asyncio.to_thread(cluster.signal, "balance", "CONT")

    await run_fault("balance frozen past the saga deadline", fault_api, fault_cluster, rows, fault,
                    watched=("balance",))
