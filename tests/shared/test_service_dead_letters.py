"""Every service's consumers with a record they cannot process, against the real PostgreSQL and
Kafka (the real apps, their real handlers): the record is set aside while the records before and
after it on the same partition are processed; a saga participant answers a set-aside forward
command with PROCESSING_FAILED; the admin routes list and replay dead letters."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from shared.events import saga as ev
from shared.events.orders import OrderCompleted, OrderCompletedItem
from shared.events.users import UserRegistered
from shared.messaging import topics
from shared.messaging.envelope import Message, Outgoing
from shared.wiring import CONSUMERS
from tests.order_service.support import eventually
from tests.support.bad_input import names_field, query_mutations
from tests.support.kafka import produce, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

HUGE = 2**70  # decodes (Python int) but overflows a bigint column: asyncpg DataError, every time


def _order_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Case:
    """One consumer: the topic it reads, its inbox name, a valid record and a poisoned one."""

    service: str
    topic: str
    inbox: str
    good: Callable[[], Message]
    poison: Callable[[], tuple[Message, Callable[[dict[str, Any]], None]]]
    failure_reply: type[ev.SagaFailure] | None = None
    setup: str | None = None
    """SQL run once before: what makes the poisoned record fail (where no input overflows)."""


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        body[key] = value

    return change


def _completed(quantity: int = 1, product_id: int = 10) -> OrderCompleted:
    return OrderCompleted(
        order_id=_order_id(),
        user_id=1,
        total_amount=1000,
        discount_amount=0,
        paid_amount=1000,
        user_coupon_id=None,
        completed_at=datetime.now(UTC),
        items=[OrderCompletedItem(product_id=product_id, name="Apple", unit_price=1000, quantity=quantity)],
    )


def _items(body: dict[str, Any]) -> None:
    body["items"][0]["quantity"] = HUGE


def _user() -> UserRegistered:
    return UserRegistered(user_id=int(uuid.uuid4().int % 10**9) + 1, name="someone", created_at=datetime.now(UTC))


CASES = [
    Case(
        "balance",
        topics.BALANCE_COMMANDS,
        "balance-saga",
        lambda: ev.RefundBalance(order_id=_order_id()),
        lambda: (ev.DeductBalance(order_id=_order_id(), user_id=1, amount=1), _set("amount", HUGE)),
        ev.BalanceDeductionFailed,
    ),
    Case(
        "catalog",
        topics.STOCK_COMMANDS,
        "catalog",
        lambda: ev.RestoreStock(order_id=_order_id()),
        lambda: (
            ev.DeductStock(order_id=f"poison-{_order_id()}", lines=[ev.StockLine(product_id=1, quantity=1)]),
            None,
        ),
        ev.StockDeductionFailed,
        # The catalog checks ids before any SQL: a constraint rejects the order instead.
        """CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.order_id LIKE 'poison-%' THEN RAISE EXCEPTION 'order rejected'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER reject_poison BEFORE INSERT ON order_stock FOR EACH ROW EXECUTE FUNCTION reject_poison();
         """,
    ),
    Case(
        "coupon",
        topics.COUPON_COMMANDS,
        "coupon",
        lambda: ev.ReleaseCoupon(order_id=_order_id()),
        lambda: (
            ev.ReserveCoupon(order_id=_order_id(), user_id=1, user_coupon_id=1, order_amount=1000),
            _set("user_coupon_id", HUGE),
        ),
        ev.CouponReservationFailed,
    ),
    Case("coupon", topics.USER_REGISTERED, "coupon-users", _user, lambda: (_user(), _set("user_id", HUGE))),
    Case("order", topics.USER_REGISTERED, "order-users", _user, lambda: (_user(), _set("user_id", HUGE))),
    Case(
        "order",
        topics.SAGA_REPLIES,
        "order-saga",
        lambda: ev.CouponReleased(order_id=_order_id(), command_id=uuid.uuid4()),
        lambda: (ev.CouponReleased(order_id=_order_id(), command_id=uuid.uuid4()), _set("order_id", "not-a-uuid")),
    ),
    Case("ranking", topics.ORDER_COMPLETED, "ranking", _completed, lambda: (_completed(), _items)),
]


@dataclass
class Service:
    client: TestClient
    dsn: str
    prefix: str
    pool: asyncpg.Pool = field(init=False)

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"


def _settings(service: str, dsn: str, prefix: str, bootstrap: str) -> Any:
    common = {
        "database_url": dsn,
        "kafka_bootstrap": bootstrap,
        "kafka_topic_prefix": prefix,
        "port": 0,
        "environment": "test",
        "access_log": False,
        "log_level": "WARNING",
        "outbox_poll_interval_s": 0.2,
        "consumer_max_attempts": 2,
        "consumer_retry_backoff_max_s": 0.5,
    }
    if service == "balance":
        from balance_service.config import Settings as B

        return B(**common)
    if service == "catalog":
        from catalog_service.config import Settings as C

        return C(**common)
    if service == "coupon":
        from coupon_service.config import Settings as K

        return K(**common, balance_url="http://127.0.0.1:9")
    if service == "order":
        from order_service.config import Settings as O

        return O(**common, balance_url="http://127.0.0.1:9", catalog_url="http://127.0.0.1:9")
    from ranking_service.config import Settings as R

    return R(**common)


def _create_app(service: str, settings: Any) -> web.Application:
    module = __import__(f"{service}_service.app", fromlist=["create_app"])
    return module.create_app(settings)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(new_database, kafka_bootstrap, topic_prefix) -> AsyncIterator[dict[str, Service]]:
    prefix = f"{topic_prefix}dl."
    found: dict[str, Service] = {}
    for name in ("balance", "catalog", "coupon", "order", "ranking"):
        dsn = await new_database(f"dl_{name}")
        client = TestClient(TestServer(_create_app(name, _settings(name, dsn, prefix, kafka_bootstrap))))
        await client.start_server()
        found[name] = Service(client, dsn, prefix)
    for svc in found.values():
        async with asyncio.timeout(60):
            for consumer in svc.client.app[CONSUMERS]:
                await consumer.assigned.wait()
        svc.pool = await asyncpg.create_pool(svc.dsn, min_size=1, max_size=2)
    yield found
    for svc in found.values():
        await svc.pool.close()
        await svc.client.close()


def _raw(topic: str, msg: Message, change: Callable[[dict[str, Any]], None] | None = None):
    out = Outgoing(topic, "one-key", msg, f"req-{msg.event_id}")
    body = orjson.loads(out.value())
    if change is not None:
        change(body)
    return topic, b"one-key", json.dumps(body).encode(), [(k, v.encode()) for k, v in out.headers().items()]


async def _processed(svc: Service, inbox: str, ids: list[uuid.UUID]) -> bool:
    found = await svc.pool.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = $1 AND message_id = ANY($2::uuid[])", inbox, ids
    )
    return found == len(ids)


async def _dead_letter(svc: Service, event_id: uuid.UUID) -> asyncpg.Record | None:
    return await svc.pool.fetchrow("SELECT * FROM dead_letters WHERE event_id = $1", event_id)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.service}-{c.inbox}" for c in CASES])
async def test_a_record_its_handler_cannot_process_is_set_aside_and_the_partition_goes_on(
    services: dict[str, Service], case: Case, kafka_bootstrap: str
) -> None:
    svc = services[case.service]
    topic = svc.topic(case.topic)
    before, after = case.good(), case.good()
    bad, change = case.poison()
    if case.setup:
        await svc.pool.execute(case.setup)
    await produce(kafka_bootstrap, [_raw(topic, before), _raw(topic, bad, change), _raw(topic, after)])
    letter = await eventually(lambda: _dead_letter(svc, bad.event_id), timeout=60)
    await eventually(lambda: _processed(svc, case.inbox, [before.event_id, after.event_id]), timeout=60)
    assert letter["topic"] == topic and letter["consumer_group"].startswith(svc.prefix)
    assert letter["error_kind"] in ("deterministic", "undecodable")
    assert bytes(letter["msg_key"]) == b"one-key" and orjson.loads(bytes(letter["payload"]))["event_id"] == str(
        bad.event_id
    )
    assert (
        await svc.pool.fetchval(
            "SELECT count(*) FROM dead_letters WHERE event_id = ANY($1::uuid[])", [before.event_id, after.event_id]
        )
        == 0
    )
    if case.failure_reply is not None:
        # The participant answered the set-aside forward command: the order saga compensates.
        replies = await read_topic(
            kafka_bootstrap,
            svc.topic(topics.SAGA_REPLIES),
            until=lambda rs: any(orjson.loads(r.value).get("command_id") == str(bad.event_id) for r in rs),
        )
        answer = [
            orjson.loads(r.value) for r in replies if orjson.loads(r.value).get("command_id") == str(bad.event_id)
        ]
        assert len(answer) == 1 and answer[0]["code"] == ev.PROCESSING_FAILED
        assert (
            dict(next(r for r in replies if orjson.loads(r.value).get("command_id") == str(bad.event_id)).headers)[
                "event-type"
            ].decode()
            == case.failure_reply.event_type
        )


async def test_admin_routes_list_and_replay(services: dict[str, Service], kafka_bootstrap: str) -> None:
    """Ranking: an order.completed that fails while a trigger rejects it is set aside; once the
    cause is gone a replay counts it, and a second replay does not count it again."""
    svc = services["ranking"]
    topic = svc.topic(topics.ORDER_COMPLETED)
    await svc.pool.execute("""
        CREATE FUNCTION reject_777() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.product_id = 777 THEN RAISE EXCEPTION 'product 777 rejected'; END IF; RETURN NEW; END $$;
        CREATE TRIGGER reject_777 BEFORE INSERT OR UPDATE ON daily_product_sales
            FOR EACH ROW EXECUTE FUNCTION reject_777();
    """)
    event = _completed(quantity=3, product_id=777)
    await produce(kafka_bootstrap, [_raw(topic, event)])
    await eventually(lambda: _dead_letter(svc, event.event_id), timeout=60)
    client = svc.client

    resp = await client.get("/api/v1/admin/dead-letters", params={"limit": "1"})
    assert resp.status == 200
    page = await resp.json()
    assert len(page["items"]) == 1
    resp = await client.get("/api/v1/admin/dead-letters", params={"limit": "100"})
    items = (await resp.json())["items"]
    mine = next(i for i in items if i["event_id"] == str(event.event_id))
    assert mine["dead_letter_id"].startswith("ranking-") and mine["service"] == "ranking"
    assert mine["topic"] == topic and mine["event_type"] == "OrderCompleted" and mine["replayed_at"] is None
    assert "product 777 rejected" in mine["error"] and mine["payload"]["event_id"] == str(event.event_id)
    assert mine["key"] == "one-key" and mine["failed_at"].endswith("Z")
    assert [i["failed_at"] for i in items] == sorted((i["failed_at"] for i in items), reverse=True)
    # Pages follow each other without repeats.
    first = await (await client.get("/api/v1/admin/dead-letters", params={"limit": "1"})).json()
    if first["next_cursor"]:
        second = await (
            await client.get("/api/v1/admin/dead-letters", params={"limit": "1", "cursor": first["next_cursor"]})
        ).json()
        assert second["items"][0]["dead_letter_id"] != first["items"][0]["dead_letter_id"]
    assert (await (await client.get("/api/v1/admin/dead-letters", params={"service": "coupon"})).json())["items"] == []
    assert (await client.get("/api/v1/admin/dead-letters", params={"cursor": "zzz"})).status == 400
    assert (await client.get("/api/v1/admin/dead-letters", params={"limit": "0"})).status == 400

    assert (await client.post("/api/v1/admin/dead-letters/ranking-999999/replay")).status == 404
    assert (await client.post("/api/v1/admin/dead-letters/balance-1/replay")).status == 404
    await svc.pool.execute("DROP TRIGGER reject_777 ON daily_product_sales")
    for _ in range(2):
        resp = await client.post(f"/api/v1/admin/dead-letters/{mine['dead_letter_id']}/replay")
        assert resp.status == 202
        assert (await resp.json())["dead_letter_id"] == mine["dead_letter_id"]
        await eventually(lambda: _replayed(svc, event.event_id), timeout=30)
        await svc.pool.execute("UPDATE dead_letters SET replayed_at = NULL WHERE event_id = $1", event.event_id)
    sold = await svc.pool.fetchval("SELECT sum(quantity) FROM daily_product_sales WHERE product_id = 777")
    assert sold == 3  # applied by the first replay, once
    assert await svc.pool.fetchval("SELECT count(*) FROM dead_letters WHERE event_id = $1", event.event_id) == 1

    spec = await (await client.get("/api/docs/openapi.json")).json()
    assert "get" in spec["paths"]["/api/v1/admin/dead-letters"]
    assert "202" in spec["paths"]["/api/v1/admin/dead-letters/{dead_letter_id}/replay"]["post"]["responses"]


async def _replayed(svc: Service, event_id: uuid.UUID) -> bool:
    return await svc.pool.fetchval("SELECT replayed_at IS NOT NULL FROM dead_letters WHERE event_id = $1", event_id)


async def test_huge_integers_and_nul_in_the_admin_routes_are_400_naming_them(services: dict[str, Service]) -> None:
    client = services["ranking"].client
    for name, query in query_mutations({"service": "ranking", "limit": "5", "cursor": "d1.ranking.1"}):
        resp = await client.get(f"/api/v1/admin/dead-letters?{query}")
        assert resp.status == 400 and names_field(await resp.json(), name), query
    assert (await client.get("/api/v1/admin/dead-letters", params={"cursor": "d1.ranking.1"})).status == 200
    for bad in ("ranking-1%00", "ranking%00-1"):
        resp = await client.post(f"/api/v1/admin/dead-letters/{bad}/replay")
        assert resp.status == 400 and (await resp.json())["code"] == "VALIDATION_ERROR", bad
    assert (await client.post(f"/api/v1/admin/dead-letters/ranking-{2**63}/replay")).status == 404


async def test_balance_orders_consumer_sets_aside_what_it_cannot_release(
    services: dict[str, Service], kafka_bootstrap: str
) -> None:
    """``balance-orders`` (order.completed -> release held money) has no inbox: its effect is the
    release itself. Orders before and after the poisoned event are released."""
    svc = services["balance"]
    resp = await svc.client.post("/api/v1/users", json={"name": "holder"})
    user = (await resp.json())["user_id"]
    assert (await svc.client.post(f"/api/v1/users/{user}/balance/charge", json={"amount": 10_000})).status == 200
    first, second = _order_id(), _order_id()
    await produce(
        kafka_bootstrap,
        [
            _raw(svc.topic(topics.BALANCE_COMMANDS), ev.DeductBalance(order_id=o, user_id=user, amount=100))
            for o in (first, second)
        ],
    )

    async def held(amount: int) -> bool:
        rows = await svc.pool.fetch("SELECT held FROM order_payments WHERE order_id = ANY($1::text[])", [first, second])
        return len(rows) == 2 and all(row["held"] == amount for row in rows)

    await eventually(lambda: held(100), timeout=60)
    topic = svc.topic(topics.ORDER_COMPLETED)
    bad = _completed()
    await produce(
        kafka_bootstrap,
        [
            _raw(topic, _completed_for(first)),
            _raw(topic, bad, _set("order_id", "bad\x00id")),
            _raw(topic, _completed_for(second)),
        ],
    )
    letter = await eventually(lambda: _dead_letter(svc, bad.event_id), timeout=60)
    await eventually(lambda: held(0), timeout=60)
    assert letter["topic"] == topic and letter["error_kind"] == "deterministic"


def _completed_for(order_id: str) -> OrderCompleted:
    return _completed().model_copy(update={"order_id": order_id})
