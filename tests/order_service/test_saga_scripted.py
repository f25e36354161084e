"""The order service against real PostgreSQL and Kafka, with scripted saga participants."""

from __future__ import annotations

import asyncio
import itertools
import socket
import uuid
from datetime import UTC, datetime

import aiohttp
import asyncpg
import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from order_service.app import create_app
from order_service.config import Settings
from order_service.domain.saga import TIMEOUT_CODE
from shared.events.users import UserRegistered
from shared.messaging.envelope import Outgoing
from shared.wiring import CONSUMERS
from tests.order_service.support import (
    DUP,
    HOLD,
    SILENT,
    LookupStub,
    ScriptedParticipants,
    eventually,
    fail,
    read_all,
)
from tests.support.bad_input import body_mutations, names_field, query_mutations
from tests.support.kafka import produce

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

_ids = itertools.count(1000)
PRODUCTS = {
    10: {"name": "Apple", "price": 1000, "status": "SELLABLE"},
    11: {"name": "Pear", "price": 2500, "status": "SELLABLE"},
    12: {"name": "Old", "price": 700, "status": "DISCONTINUED"},
}


class Env:
    def __init__(
        self, dsn: str, prefix: str, bootstrap: str, stub_url: str, stub: LookupStub, parts: ScriptedParticipants
    ) -> None:
        self.dsn, self.prefix, self.bootstrap, self.stub_url = dsn, prefix, bootstrap, stub_url
        self.stub, self.parts = stub, parts
        self.client: TestClient | None = None

    def settings(self, **changes) -> Settings:
        values = {
            "database_url": self.dsn,
            "kafka_topic_prefix": self.prefix,
            "kafka_bootstrap": self.bootstrap,
            "port": 0,
            "catalog_url": self.stub_url,
            "balance_url": self.stub_url,
            "saga_step_timeout_s": 3.0,
            "saga_max_attempts": 3,
            "saga_backoff_cap_s": 2.0,
            "saga_sweep_interval_s": 0.2,
            "outbox_poll_interval_s": 0.2,
            "access_log": False,
            "order_wait_timeout_s": 15.0,
        }
        values.update(changes)
        return Settings(**values)

    def user(self) -> int:
        user_id = next(_ids)
        self.stub.users.add(user_id)
        return user_id


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def env(new_database, kafka_bootstrap, topic_prefix):
    prefix = f"{topic_prefix}scripted."
    stub = LookupStub()
    stub.products.update(PRODUCTS)
    stub_server = TestServer(stub.app())
    await stub_server.start_server()
    parts = ScriptedParticipants(kafka_bootstrap, prefix)
    e = Env(
        await new_database("order"), prefix, kafka_bootstrap, str(stub_server.make_url("")).rstrip("/"), stub, parts
    )
    client = TestClient(TestServer(create_app(e.settings())))
    await client.start_server()
    e.client = client
    await parts.start()
    yield e
    await parts.stop()
    await client.close()
    await stub_server.close()


async def consumers_ready(app: web.Application) -> None:
    """Wait until the app's consumers hold partitions (a consumer cancelled while starting leaks)."""
    async with asyncio.timeout(30):
        for consumer in app[CONSUMERS]:
            await consumer.assigned.wait()


async def place(client: TestClient, body: dict, **headers: str):
    resp = await client.post("/api/v1/orders", json=body, headers=headers)
    return resp.status, await resp.json(), resp.headers


def order_body(user_id: int, coupon: int | None = 7) -> dict:
    body = {"user_id": user_id, "items": [{"product_id": 10, "quantity": 2}, {"product_id": 11, "quantity": 1}]}
    if coupon is not None:
        body["user_coupon_id"] = coupon
    return body


async def test_order_with_coupon_completes_and_publishes_once(env: Env) -> None:
    user = env.user()
    status, body, headers = await place(env.client, order_body(user), **{"X-Request-ID": "req-complete-1"})
    assert status == 201, body
    assert body["status"] == "COMPLETED" and headers["Location"] == f"/api/v1/orders/{body['order_id']}"
    assert (body["total_amount"], body["discount_amount"], body["paid_amount"]) == (4500, 500, 4000)
    assert body["items"][0] == {
        "product_id": 10,
        "name": "Apple",
        "unit_price": 1000,
        "quantity": 2,
        "line_total": 2000,
    }
    assert body["completed_at"].endswith("Z") and body["failure_code"] is None
    oid = body["order_id"]
    # the POST answered from the outcome notice without reading the order: it is the stored order
    stored = await env.client.get(f"/api/v1/orders/{oid}")
    assert await stored.json() == body
    assert env.parts.commands(oid)[:3] == ["ReserveCoupon", "DeductBalance", "DeductStock"]
    deduct = env.parts.received[oid][1]
    assert deduct.amount == 4000
    await eventually(lambda: _saga_step(env, oid, "DONE"))
    assert env.parts.commands(oid) == ["ReserveCoupon", "DeductBalance", "DeductStock", "ConfirmCoupon"]
    await eventually(lambda: _outbox_empty(env))
    records = [r for r in await read_all(env.bootstrap, f"{env.prefix}order.completed") if r.key == oid.encode()]
    assert len(records) == 1
    headers = {k: v.decode() for k, v in records[0].headers}
    assert headers["event-type"] == "OrderCompleted" and headers["event-version"] == "1"
    assert headers["request-id"] == "req-complete-1" and headers["occurred-at"].endswith("Z")
    uuid.UUID(headers["event-id"])
    event = orjson.loads(records[0].value)
    assert event["event_id"] == headers["event-id"] and event["paid_amount"] == 4000
    assert event["items"][1] == {"product_id": 11, "name": "Pear", "unit_price": 2500, "quantity": 1}
    assert event["user_coupon_id"] == 7 and event["total_amount"] == 4500


async def _saga_step(env: Env, oid: str, step: str) -> bool:
    conn = await asyncpg.connect(env.dsn)
    try:
        return await conn.fetchval("SELECT step FROM sagas WHERE order_id = $1", oid) == step
    finally:
        await conn.close()


async def _outbox_empty(env: Env) -> bool:
    conn = await asyncpg.connect(env.dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await conn.close()


async def _count(env: Env, sql: str, *args) -> int:
    conn = await asyncpg.connect(env.dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _shows_nothing_kept(env: Env, user: int, oid: str, status: str) -> None:
    """The order (GET, the user's list and the stored row) shows status and amounts 0."""
    got = await (await env.client.get(f"/api/v1/orders/{oid}")).json()
    assert (got["status"], got["discount_amount"], got["paid_amount"]) == (status, 0, 0), got
    page = await (await env.client.get(f"/api/v1/users/{user}/orders")).json()
    listed = [o for o in page["items"] if o["order_id"] == oid]
    assert [(o["status"], o["discount_amount"], o["paid_amount"]) for o in listed] == [(status, 0, 0)]
    assert await _count(env, "SELECT discount_amount + paid_amount FROM orders WHERE order_id = $1::uuid", oid) == 0


async def test_insufficient_balance_fails_and_releases_the_coupon(env: Env) -> None:
    user = env.user()
    env.parts.script(user, DeductBalance=fail("INSUFFICIENT_BALANCE"))
    status, body, _ = await place(env.client, order_body(user))
    assert status == 409, body
    assert body["code"] == "INSUFFICIENT_BALANCE" and body["order_status"] == "FAILED"
    assert env.parts.commands(body["order_id"]) == ["ReserveCoupon", "DeductBalance", "ReleaseCoupon"]
    got = await (await env.client.get(f"/api/v1/orders/{body['order_id']}")).json()
    assert got["status"] == "FAILED" and got["failure_code"] == "INSUFFICIENT_BALANCE"


async def test_out_of_stock_refunds_and_releases(env: Env) -> None:
    user = env.user()
    env.parts.script(user, DeductStock=fail("OUT_OF_STOCK"))
    status, body, _ = await place(env.client, order_body(user))
    assert status == 409 and body["code"] == "OUT_OF_STOCK", body
    cmds = env.parts.commands(body["order_id"])
    assert cmds[:3] == ["ReserveCoupon", "DeductBalance", "DeductStock"]
    assert sorted(cmds[3:]) == ["RefundBalance", "ReleaseCoupon"]
    assert "paid_amount" not in body and "discount_amount" not in body
    await _shows_nothing_kept(env, user, body["order_id"], "FAILED")
    await eventually(lambda: _outbox_empty(env))
    failed = [
        r for r in await read_all(env.bootstrap, f"{env.prefix}order.failed") if r.key == body["order_id"].encode()
    ]
    assert len(failed) == 1
    completed = [
        r for r in await read_all(env.bootstrap, f"{env.prefix}order.completed") if r.key == body["order_id"].encode()
    ]
    assert completed == []


async def test_coupon_unavailable_fails_without_touching_the_balance(env: Env) -> None:
    user = env.user()
    env.parts.script(user, ReserveCoupon=fail("COUPON_UNAVAILABLE"))
    status, body, _ = await place(env.client, order_body(user))
    assert status == 409 and body["code"] == "COUPON_UNAVAILABLE" and body["order_id"]
    assert env.parts.commands(body["order_id"]) == ["ReserveCoupon"]


async def test_duplicate_replies_change_nothing(env: Env) -> None:
    user = env.user()
    env.parts.script(user, ReserveCoupon=DUP, DeductBalance=DUP, DeductStock=DUP, ConfirmCoupon=DUP)
    status, body, _ = await place(env.client, order_body(user))
    assert status == 201 and body["paid_amount"] == 4000
    oid = body["order_id"]
    await eventually(lambda: _saga_step(env, oid, "DONE"))
    await eventually(lambda: _outbox_empty(env))
    assert env.parts.commands(oid) == ["ReserveCoupon", "DeductBalance", "DeductStock", "ConfirmCoupon"]
    records = [r for r in await read_all(env.bootstrap, f"{env.prefix}order.completed") if r.key == oid.encode()]
    assert len(records) == 1


async def test_silent_participant_gets_resends_then_compensation(env: Env) -> None:
    user = env.user()
    env.parts.script(user, DeductStock=SILENT)
    status, body, _ = await place(env.client, order_body(user))
    assert status == 409 and body["code"] == TIMEOUT_CODE, body
    cmds = env.parts.commands(body["order_id"])
    assert cmds.count("DeductStock") == 3
    assert sorted(cmds[-3:]) == ["RefundBalance", "ReleaseCoupon", "RestoreStock"]


async def test_unacknowledged_compensation_is_resent_until_acknowledged(env: Env) -> None:
    user = env.user()
    env.parts.script(user, DeductStock=fail("OUT_OF_STOCK"), RefundBalance=SILENT)
    status, body, _ = await place(env.client, order_body(user), Prefer="respond-async")
    assert status == 202
    assert (body["status"], body["discount_amount"], body["paid_amount"]) == ("PENDING", 0, 0)
    oid = body["order_id"]
    await eventually(lambda: _async_true(env.parts.commands(oid).count("RefundBalance") >= 3))
    await _shows_nothing_kept(env, user, oid, "PENDING")  # deducted, then compensating: nothing kept yet
    env.parts.script(user, RefundBalance="ok")
    got = await eventually(lambda: _finished(env.client, oid))
    assert got["status"] == "FAILED" and got["failure_code"] == "OUT_OF_STOCK"
    await _shows_nothing_kept(env, user, oid, "FAILED")


async def _async_true(value: bool) -> bool:
    return value


async def _finished(client: TestClient, oid: str) -> dict | None:
    got = await (await client.get(f"/api/v1/orders/{oid}")).json()
    return got if got["status"] != "PENDING" else None


async def test_respond_async_then_get_shows_the_outcome(env: Env) -> None:
    user = env.user()
    status, body, headers = await place(env.client, order_body(user, coupon=None), Prefer="respond-async")
    assert status == 202 and body["status"] == "PENDING"
    assert headers["Location"] == f"/api/v1/orders/{body['order_id']}"
    got = await eventually(lambda: _finished(env.client, body["order_id"]))
    assert got["status"] == "COMPLETED" and got["paid_amount"] == 4500 and got["discount_amount"] == 0


async def test_idempotency_key(env: Env) -> None:
    user = env.user()
    key = f"key-{uuid.uuid4()}"
    results = await asyncio.gather(*(place(env.client, order_body(user), **{"Idempotency-Key": key}) for _ in range(8)))
    assert {status for status, _, _ in results} == {201}
    assert len({body["order_id"] for _, body, _ in results}) == 1
    assert await _count(env, "SELECT count(*) FROM orders WHERE user_id = $1", user) == 1
    # the racing losers wrote nothing: no second saga, line or key
    assert await _count(env, "SELECT count(*) FROM sagas WHERE (data->>'user_id')::bigint = $1", user) == 1
    assert await _count(
        env, "SELECT count(*) FROM order_items i JOIN orders o USING (order_id) WHERE o.user_id = $1", user
    ) == len(order_body(user)["items"])
    assert await _count(env, "SELECT count(*) FROM idempotency_keys WHERE key = $1", key) == 1
    status, body, _ = await place(env.client, order_body(user, coupon=None), **{"Idempotency-Key": key})
    assert status == 409 and body["code"] == "IDEMPOTENCY_KEY_REUSED"
    status, again, _ = await place(env.client, order_body(user), **{"Idempotency-Key": key})
    assert status == 201 and again["order_id"] == results[0][1]["order_id"]


async def test_idempotency_keys_are_scoped_to_the_user(env: Env) -> None:
    """Two users who pick the same key each get their own order; each replays their own."""
    key = f"key-{uuid.uuid4()}"
    first, second = env.user(), env.user()
    status, mine, _ = await place(env.client, order_body(first, coupon=None), **{"Idempotency-Key": key})
    assert status == 201, mine
    status, theirs, _ = await place(env.client, order_body(second, coupon=None), **{"Idempotency-Key": key})
    assert status == 201 and theirs["user_id"] == second and theirs["order_id"] != mine["order_id"], theirs
    status, again, _ = await place(env.client, order_body(second, coupon=None), **{"Idempotency-Key": key})
    assert status == 201 and again["order_id"] == theirs["order_id"]
    assert await _count(env, "SELECT count(*) FROM idempotency_keys WHERE key = $1", key) == 2


async def test_a_keyed_retry_replays_even_when_the_order_could_no_longer_be_placed(env: Env) -> None:
    """The key is only looked up when needed, yet a retry gets the first answer when the product
    was discontinued since or the catalog is unreachable; a new key gets the refusal."""
    user = env.user()
    key = f"key-{uuid.uuid4()}"
    status, first, _ = await place(env.client, order_body(user, coupon=None), **{"Idempotency-Key": key})
    assert status == 201, first
    lookups = env.stub.lookups
    env.stub.products[11] = {**PRODUCTS[11], "status": "DISCONTINUED"}
    try:
        status, again, _ = await place(env.client, order_body(user, coupon=None), **{"Idempotency-Key": key})
        assert status == 201 and again["order_id"] == first["order_id"], again
        status, refused, _ = await place(
            env.client, order_body(user, coupon=None), **{"Idempotency-Key": f"key-{uuid.uuid4()}"}
        )
        assert status == 409 and refused["code"] == "PRODUCT_NOT_SELLABLE", refused
    finally:
        env.stub.products[11] = PRODUCTS[11]
    assert env.stub.lookups > lookups
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    client = TestClient(TestServer(create_app(env.settings(catalog_url=dead, saga_workers=False))))
    await client.start_server()
    try:
        status, again, _ = await place(client, order_body(user, coupon=None), **{"Idempotency-Key": key})
        assert status == 201 and again["order_id"] == first["order_id"], again
        status, body, _ = await place(client, order_body(user, coupon=None), **{"Idempotency-Key": f"k-{uuid.uuid4()}"})
        assert status == 503, body
    finally:
        await client.close()
    assert await _count(env, "SELECT count(*) FROM orders WHERE user_id = $1", user) == 1


async def test_validation_and_lookups(env: Env) -> None:
    user = env.user()
    cases = [
        {"user_id": "1", "items": [{"product_id": 10, "quantity": 1}]},
        {"user_id": user, "items": []},
        {"user_id": user, "items": [{"product_id": 10, "quantity": 1001}]},
        {"user_id": user, "items": [{"product_id": 10, "quantity": 1.0}]},
        {"user_id": user, "items": [{"product_id": 10, "quantity": 1}, {"product_id": 10, "quantity": 2}]},
        {"user_id": user, "items": [{"product_id": 10, "quantity": 1}], "user_coupon_id": 0},
        {"user_id": user, "items": [{"product_id": p, "quantity": 1} for p in range(1, 52)]},
    ]
    for case in cases:
        status, body, _ = await place(env.client, case)
        assert status == 400 and body["code"] == "VALIDATION_ERROR", case
    status, body, _ = await place(env.client, {"user_id": 99999999, "items": [{"product_id": 10, "quantity": 1}]})
    assert status == 404 and body["code"] == "USER_NOT_FOUND"
    status, body, _ = await place(env.client, {"user_id": user, "items": [{"product_id": 999, "quantity": 1}]})
    assert status == 404 and body["code"] == "PRODUCT_NOT_FOUND"
    status, body, _ = await place(env.client, {"user_id": user, "items": [{"product_id": 12, "quantity": 1}]})
    assert status == 409 and body["code"] == "PRODUCT_NOT_SELLABLE" and "order_id" not in body
    assert await _count(env, "SELECT count(*) FROM orders WHERE user_id = $1", user) == 0
    spec = await (await env.client.get("/api/docs/openapi.json")).json()
    assert {"/api/v1/orders", "/api/v1/orders/{order_id}", "/api/v1/users/{user_id}/orders"} <= set(spec["paths"])
    for bad in ("nope", str(uuid.uuid4())):
        resp = await env.client.get(f"/api/v1/orders/{bad}")
        assert resp.status == 404 and (await resp.json())["code"] == "ORDER_NOT_FOUND"


async def test_user_orders_newest_first_paginated(env: Env) -> None:
    user = env.user()
    ids = []
    for _ in range(3):
        status, body, _ = await place(env.client, order_body(user, coupon=None))
        assert status == 201
        ids.append(body["order_id"])
    resp = await env.client.get(f"/api/v1/users/{user}/orders", params={"limit": "2"})
    page = await resp.json()
    assert [o["order_id"] for o in page["items"]] == ids[::-1][:2] and page["next_cursor"]
    resp = await env.client.get(f"/api/v1/users/{user}/orders", params={"limit": "2", "cursor": page["next_cursor"]})
    rest = await resp.json()
    assert [o["order_id"] for o in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert (await env.client.get(f"/api/v1/users/{user}/orders", params={"cursor": "@@"})).status == 400
    resp = await env.client.get("/api/v1/users/88888888/orders")
    assert resp.status == 404 and (await resp.json())["code"] == "USER_NOT_FOUND"


async def test_another_instance_answers_the_wait(env: Env) -> None:
    """The API-only instance has no saga workers: the outcome comes through LISTEN/NOTIFY."""
    api_only = TestClient(TestServer(create_app(env.settings(saga_workers=False, instance_id="api-only"))))
    await api_only.start_server()
    await consumers_ready(api_only.app)
    try:
        user = env.user()
        status, body, _ = await place(api_only, order_body(user))
        assert status == 201 and body["status"] == "COMPLETED"
    finally:
        await api_only.close()


async def test_saga_resumes_after_restart(env: Env) -> None:
    """The instance that started the saga stops mid-saga; the other instance finishes it.

    (``test_crash_recovery`` kills the only instance with SIGKILL and starts a new one.)
    """
    user = env.user()
    env.parts.script(user, DeductStock=HOLD)
    runner = web.AppRunner(create_app(env.settings(instance_id="first")))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    await consumers_ready(runner.app)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{port}/api/v1/orders", json=order_body(user), headers={"Prefer": "respond-async"}
        ) as resp,
    ):
        assert resp.status == 202
        oid = (await resp.json())["order_id"]
    await eventually(lambda: _async_true(any(c.order_id == oid for c in env.parts.held)))
    await runner.cleanup()  # the instance goes away mid-saga
    env.parts.script(user)  # from now on the stock step answers
    await env.parts.answer_held()
    got = await eventually(lambda: _finished(env.client, oid))
    assert got["status"] == "COMPLETED" and got["paid_amount"] == 4000


async def test_user_registered_projection_is_used_without_asking_balance(env: Env) -> None:
    user_id = next(_ids) + 500_000  # the stub does not know this user: only the event can tell
    event = UserRegistered(user_id=user_id, name="projected", created_at=datetime.now(UTC))
    out = Outgoing(f"{env.prefix}user.registered", str(user_id), event)
    await produce(
        env.bootstrap, [(out.topic, out.key.encode(), out.value(), [(k, v.encode()) for k, v in out.headers().items()])]
    )

    async def known() -> bool:
        return await _count(env, "SELECT count(*) FROM known_users WHERE user_id = $1", user_id) == 1

    await eventually(known)
    status, body, _ = await place(env.client, order_body(user_id, coupon=None))
    assert status == 201, body


async def test_catalog_unreachable_is_503_and_creates_nothing(env: Env) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    client = TestClient(TestServer(create_app(env.settings(catalog_url=dead, saga_workers=False))))
    await client.start_server()
    await consumers_ready(client.app)
    try:
        user = env.user()
        status, body, headers = await place(client, order_body(user))
        assert status == 503 and body["code"] == "SERVICE_UNAVAILABLE", body
        assert int(headers["Retry-After"]) >= 1  # nothing happened: the client may simply retry
        assert await _count(env, "SELECT count(*) FROM orders WHERE user_id = $1", user) == 0
    finally:
        await client.close()


async def test_huge_integers_and_nul_are_400_naming_the_field_and_change_nothing(env: Env) -> None:
    user = env.user()
    body = {"user_id": user, "items": [{"product_id": 10, "quantity": 1}], "user_coupon_id": 7}
    for field, bad in body_mutations(body):
        status, problem, _ = await place(env.client, bad)
        assert status == 400 and names_field(problem, field), (bad, problem)
    for name, query in query_mutations({"limit": "5", "cursor": "o1." + "0" * 32}):
        resp = await env.client.get(f"/api/v1/users/{user}/orders?{query}")
        assert resp.status == 400 and names_field(await resp.json(), name), query
    for path in (f"/api/v1/orders/{uuid.uuid4()}%00", f"/api/v1/users/{2**63}/orders"):
        resp = await env.client.get(path)
        assert resp.status == 400 and (await resp.json())["code"] == "VALIDATION_ERROR", path
    resp = await env.client.post("/api/v1/orders", json=body, headers={"Idempotency-Key": "k" * 256})
    assert resp.status == 400 and names_field(await resp.json(), "Idempotency-Key")
    assert await _count(env, "SELECT count(*) FROM orders WHERE user_id = $1", user) == 0
