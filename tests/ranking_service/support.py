"""Helpers of the ranking_service integration tests: apps, a settable clock, events, polling."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition

from ranking_service.app import SCHEDULER, create_app
from ranking_service.config import Settings
from shared.events.orders import OrderCompleted, OrderCompletedItem
from shared.messaging.envelope import Outgoing
from shared.messaging.producer import KafkaPublisher
from shared.messaging.topics import DEFAULT_PARTITIONS
from shared.wiring import CONSUMERS

T = TypeVar("T")


class SettableClock:
    """A clock the test moves by hand; shared by the apps it is given to."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def settings(dsn: str, bootstrap: str, prefix: str, instance: str = "r1", **extra: Any) -> Settings:
    return Settings(
        database_url=dsn,
        kafka_bootstrap=bootstrap,
        kafka_topic_prefix=prefix,
        instance_id=instance,
        environment="test",
        access_log=False,
        batch_delay_s=0,
        db_pool_min=1,
        db_pool_max=4,
        **extra,
    )


@contextlib.asynccontextmanager
async def running(cfg: Settings, clock: Callable[[], datetime] | None = None) -> AsyncIterator[TestClient]:
    """The app served on a free port, its consumer assigned; stopped cleanly on exit."""
    app = create_app(cfg, clock=clock) if clock else create_app(cfg)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        await asyncio.wait_for(app[CONSUMERS][0].assigned.wait(), 30)
        yield client
    finally:
        await client.close()


def scheduler(client: TestClient) -> Any:
    return client.app[SCHEDULER]


def order(completed_at: str, *items: tuple[int, str, int], order_id: str | None = None) -> OrderCompleted:
    lines = [OrderCompletedItem(product_id=p, name=n, unit_price=1000, quantity=q) for p, n, q in items]
    total = sum(line.unit_price * line.quantity for line in lines)
    return OrderCompleted(
        order_id=order_id or str(uuid.uuid4()),
        user_id=1,
        items=lines,
        total_amount=total,
        discount_amount=0,
        paid_amount=total,
        user_coupon_id=None,
        completed_at=datetime.fromisoformat(completed_at).astimezone(UTC),
    )


async def publish(bootstrap: str, prefix: str, events: list[OrderCompleted], key: str | None = None) -> None:
    """Publish to the run's real ``order.completed`` topic, with the contract's headers."""
    publisher = KafkaPublisher(bootstrap, client_id="ranking-tests")
    try:
        await publisher.send_many(
            [Outgoing(f"{prefix}order.completed", key or e.order_id, e, "req-ranking-test") for e in events]
        )
    finally:
        await publisher.close()


async def rewind_group(bootstrap: str, prefix: str) -> None:
    """Commit offset 0 on every partition for the ranking group, as if nothing had been committed."""
    topic = f"{prefix}order.completed"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"{prefix}ranking", enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(DEFAULT_PARTITIONS)]
        consumer.assign(partitions)
        await consumer.commit(dict.fromkeys(partitions, 0))
    finally:
        await consumer.stop()


async def eventually(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool], timeout: float = 20.0) -> T:
    """Poll ``probe`` until ``ok`` holds; fail with the last value after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.1)


async def top(client: TestClient, days: int = 3, limit: int = 5) -> dict[str, Any]:
    response = await client.get("/api/v1/rankings/top-products", params={"days": days, "limit": limit})
    assert response.status == 200, await response.text()
    return await response.json()


def summary(body: dict[str, Any]) -> list[tuple[int, int, int, int]]:
    """``(rank, product_id, quantity_sold, order_count)`` of a ranking response."""
    return [(i["rank"], i["product_id"], i["quantity_sold"], i["order_count"]) for i in body["items"]]
