"""The stock step through the real ``saga.stock.commands`` and ``saga.replies`` topics."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.events import REGISTRY
from shared.events.saga import DeductStock, RestoreStock, SagaCommand, StockLine
from shared.messaging import topics
from shared.messaging.envelope import Outgoing
from tests.catalog_service.conftest import Catalog
from tests.support.kafka import produce, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def send(catalog: Catalog, *commands: SagaCommand) -> None:
    topic = f"{catalog.settings.kafka_topic_prefix}{topics.STOCK_COMMANDS}"
    records = []
    for command in commands:
        out = Outgoing(topic, command.order_id, command, request_id="req-catalog-test")
        records.append((topic, out.key.encode(), out.value(), [(k, v.encode()) for k, v in out.headers().items()]))
    await produce(catalog.settings.kafka_bootstrap, records)


async def replies_for(catalog: Catalog, order_id: str, count: int) -> list[Any]:
    topic = f"{catalog.settings.kafka_topic_prefix}{topics.SAGA_REPLIES}"

    def mine(records: list[Any]) -> list[Any]:
        return [r for r in records if r.key == order_id.encode()]

    records = await read_topic(catalog.settings.kafka_bootstrap, topic, until=lambda rs: len(mine(rs)) >= count)
    return [REGISTRY.decode(r).message for r in mine(records)]


async def test_redelivered_and_resent_commands_change_nothing(catalog: Catalog) -> None:
    pid = (await catalog.create(stock=10))["product_id"]
    order = f"o-{uuid.uuid4().hex}"
    deduct = DeductStock(order_id=order, lines=[StockLine(product_id=pid, quantity=4)])
    resent = DeductStock(order_id=order, lines=[StockLine(product_id=pid, quantity=4)])
    # the same record twice (redelivery: same event id), then a re-sent command (new event id)
    await send(catalog, deduct, deduct, resent)
    replies = await replies_for(catalog, order, 2)
    assert [type(r).__name__ for r in replies] == ["StockDeducted", "StockDeducted"]
    assert [r.command_id for r in replies] == [deduct.event_id, resent.event_id]
    assert (await catalog.get(pid))["stock"] == 6

    first, second = RestoreStock(order_id=order), RestoreStock(order_id=order)
    late = DeductStock(order_id=order, lines=[StockLine(product_id=pid, quantity=4)])
    await send(catalog, first, first, second, late)
    replies = await replies_for(catalog, order, 5)
    assert [type(r).__name__ for r in replies[2:]] == ["StockRestored", "StockRestored", "StockDeductionFailed"]
    assert replies[4].code == "ALREADY_COMPENSATED" and replies[4].command_id == late.event_id
    assert (await catalog.get(pid))["stock"] == 10
    # nothing more arrives for this order (a short bounded read, not a timing assertion)
    topic = f"{catalog.settings.kafka_topic_prefix}{topics.SAGA_REPLIES}"
    records = await read_topic(
        catalog.settings.kafka_bootstrap,
        topic,
        until=lambda rs: sum(r.key == order.encode() for r in rs) > 5,
        timeout=2,
    )
    assert sum(r.key == order.encode() for r in records) == 5


async def test_restore_first_fences_the_order(catalog: Catalog) -> None:
    pid = (await catalog.create(stock=10))["product_id"]
    order = f"o-{uuid.uuid4().hex}"
    restore = RestoreStock(order_id=order)
    deduct = DeductStock(order_id=order, lines=[StockLine(product_id=pid, quantity=1)])
    await send(catalog, restore, deduct)
    replies = await replies_for(catalog, order, 2)
    assert [type(r).__name__ for r in replies] == ["StockRestored", "StockDeductionFailed"]
    assert replies[1].code == "ALREADY_COMPENSATED"
    assert (await catalog.get(pid))["stock"] == 10
    status = await catalog.pool.fetchval("SELECT status FROM order_stock WHERE order_id = $1", order)
    assert status == "FENCED"


async def test_a_batch_of_orders_through_kafka_ends_exact(catalog: Catalog) -> None:
    a = (await catalog.create(stock=50))["product_id"]
    b = (await catalog.create(stock=50))["product_id"]
    orders = [f"o-{uuid.uuid4().hex}" for _ in range(80)]
    commands = [
        DeductStock(
            order_id=o,
            lines=[
                StockLine(product_id=a if i % 2 else b, quantity=1),
                StockLine(product_id=b if i % 2 else a, quantity=1),
            ],
        )
        for i, o in enumerate(orders)
    ]
    await send(catalog, *commands)
    topic = f"{catalog.settings.kafka_topic_prefix}{topics.SAGA_REPLIES}"
    wanted = {o.encode() for o in orders}
    records = await read_topic(
        catalog.settings.kafka_bootstrap,
        topic,
        until=lambda rs: len({r.key for r in rs} & wanted) == 80,
        timeout=30,
    )
    names = [REGISTRY.decode(r).message for r in records if r.key in wanted]
    assert len(names) == 80
    assert sum(type(m).__name__ == "StockDeducted" for m in names) == 50
    assert {m.code for m in names if type(m).__name__ == "StockDeductionFailed"} == {"OUT_OF_STOCK"}
    assert (await catalog.get(a))["stock"] == 0 and (await catalog.get(b))["stock"] == 0


async def test_two_instances_share_the_commands_and_end_exact(catalog: Catalog) -> None:
    import asyncio
    import time

    from aiohttp.test_utils import TestClient, TestServer

    from catalog_service.app import create_app
    from shared.wiring import CONSUMERS

    other = TestClient(TestServer(create_app(catalog.settings.model_copy(update={"instance_id": "catalog-2"}))))
    await other.start_server()
    try:
        await asyncio.wait_for(other.app[CONSUMERS][0].assigned.wait(), 30)
        a = (await catalog.create(stock=150))["product_id"]
        b = (await catalog.create(stock=150))["product_id"]
        orders = [f"o-{uuid.uuid4().hex}" for _ in range(200)]
        commands = [
            DeductStock(
                order_id=o,
                lines=[
                    StockLine(product_id=a if i % 2 else b, quantity=1),
                    StockLine(product_id=b if i % 2 else a, quantity=1),
                ],
            )
            for i, o in enumerate(orders)
        ]
        started = time.monotonic()
        await send(catalog, *commands)
        topic = f"{catalog.settings.kafka_topic_prefix}{topics.SAGA_REPLIES}"
        wanted = {o.encode() for o in orders}
        records = await read_topic(
            catalog.settings.kafka_bootstrap,
            topic,
            until=lambda rs: len({r.key for r in rs} & wanted) == 200,
            timeout=60,
        )
        elapsed = time.monotonic() - started
        messages = [REGISTRY.decode(r).message for r in records if r.key in wanted]
        assert len(messages) == 200, f"{len(messages)} replies"
        assert sum(type(m).__name__ == "StockDeducted" for m in messages) == 150
        assert (await catalog.get(a))["stock"] == 0 and (await catalog.get(b))["stock"] == 0
        print(f"200 DeductStock through Kafka on two instances: {elapsed:.2f}s")
    finally:
        await other.close()
