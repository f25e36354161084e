"""One balance_service app (real PostgreSQL + Kafka) for the integration tests of this package."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from balance_service.app import create_app
from balance_service.config import Settings
from shared.db.pool import PG_POOL
from shared.events import REGISTRY
from shared.messaging import topics
from shared.messaging.envelope import Message, Outgoing
from shared.wiring import CONSUMERS
from tests.support.kafka import produce, read_topic


@pytest_asyncio.fixture(scope="session")
async def settings(new_database, kafka_bootstrap: str, topic_prefix: str) -> Settings:
    dsn = await new_database("balance")
    return Settings(
        database_url=dsn,
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        environment="test",
        access_log=False,
        log_level="WARNING",
        port=0,
        db_pool_min=2,
        db_pool_max=20,
        outbox_poll_interval_s=0.2,
    )


@pytest_asyncio.fixture(scope="session")
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    app = create_app(settings)
    async with TestClient(TestServer(app)) as test_client:
        for consumer in app[CONSUMERS]:
            async with asyncio.timeout(30):
                await consumer.assigned.wait()
        yield test_client


@pytest_asyncio.fixture(scope="session")
async def pool(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app[PG_POOL]


class Helpers:
    """Small actions the tests repeat."""

    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def topic(self, base: str) -> str:
        return f"{self.settings.kafka_topic_prefix}{base}"

    async def new_user(self, balance: int = 0) -> int:
        resp = await self.client.post("/api/v1/users", json={"name": f"user-{uuid.uuid4().hex[:6]}"})
        assert resp.status == 201, await resp.text()
        user_id = (await resp.json())["user_id"]
        if balance:
            await self.charge(user_id, balance)
        return int(user_id)

    async def charge(self, user_id: int, amount: Any, **kwargs: Any) -> Any:
        return await self.client.post(f"/api/v1/users/{user_id}/balance/charge", json={"amount": amount}, **kwargs)

    async def balance(self, user_id: int) -> int:
        resp = await self.client.get(f"/api/v1/users/{user_id}/balance")
        assert resp.status == 200
        return int((await resp.json())["balance"])

    async def history(self, user_id: int, **params: Any) -> dict[str, Any]:
        resp = await self.client.get(f"/api/v1/users/{user_id}/balance/history", params=params)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def send_commands(self, messages: list[Message]) -> None:
        """Produce saga commands to the real balance commands topic, as the order saga does."""
        topic = self.topic(topics.BALANCE_COMMANDS)
        records = []
        for msg in messages:
            out = Outgoing(topic, msg.order_id, msg, "req-test")  # type: ignore[attr-defined]
            headers = [(k, v.encode()) for k, v in out.headers().items()]
            records.append((topic, out.key.encode(), out.value(), headers))
        await produce(self.settings.kafka_bootstrap, records)

    async def replies(
        self, order_ids: set[str], until: Callable[[list[Message]], bool], timeout: float = 30.0
    ) -> list[Message]:
        """Replies on the real ``saga.replies`` topic for ``order_ids``, read until ``until`` holds."""

        def decode(records: list[Any]) -> list[Message]:
            mine = [r for r in records if r.key is not None and r.key.decode() in order_ids]
            return [REGISTRY.decode(r).message for r in mine]

        records = await read_topic(
            self.settings.kafka_bootstrap,
            self.topic(topics.SAGA_REPLIES),
            until=lambda rs: until(decode(rs)),
            timeout=timeout,
        )
        return decode(records)


@pytest_asyncio.fixture(scope="session")
async def h(client: TestClient, settings: Settings) -> Helpers:
    return Helpers(client, settings)
