"""A running catalog app (real PostgreSQL + Kafka, private topics) and helpers to drive it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from catalog_service.app import create_app
from catalog_service.bootstrap import Deps, bootstrap
from catalog_service.config import Settings
from catalog_service.domain.commands import RestoreStock as Restore
from catalog_service.messaging.consumers import command_of, reply_to
from catalog_service.service.stock import deduct_stock, restore_stock
from shared.db.pool import PG_POOL, close_pool, create_pool
from shared.events.saga import DeductStock, RestoreStock, SagaReply, StockLine
from shared.wiring import CONSUMERS


@dataclass
class Catalog:
    client: TestClient
    pool: asyncpg.Pool  # a separate, larger pool for concurrent saga calls
    settings: Settings
    deps: Deps  # the handlers' dependencies on ``pool``

    async def create(self, name: str = "thing", price: int = 1000, stock: int = 10) -> dict:
        resp = await self.client.post("/api/v1/admin/products", json={"name": name, "price": price, "stock": stock})
        assert resp.status == 201, await resp.text()
        return await resp.json()

    async def get(self, product_id: int) -> dict:
        resp = await self.client.get(f"/api/v1/products/{product_id}")
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def deduct(self, order_id: str, lines: list[tuple[int, int]]) -> SagaReply:
        message = DeductStock(order_id=order_id, lines=[StockLine(product_id=p, quantity=q) for p, q in lines])
        command = command_of(message)
        assert not isinstance(command, Restore)
        async with self.deps.uow() as uow:
            answer = await deduct_stock(uow, command)
            await uow.commit()
        return reply_to(message, answer)

    async def restore(self, order_id: str) -> SagaReply:
        message = RestoreStock(order_id=order_id)
        async with self.deps.uow() as uow:
            answer = await restore_stock(uow, Restore(order_id))
            await uow.commit()
        return reply_to(message, answer)


@pytest_asyncio.fixture(scope="module")
async def catalog(new_database, kafka_bootstrap, topic_prefix) -> AsyncIterator[Catalog]:
    dsn = await new_database("catalog")
    settings = Settings(
        database_url=dsn,
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        outbox_poll_interval_s=0.2,
        instance_id="catalog-test",
        access_log=False,
        port=0,
    )
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    consumer = client.app[CONSUMERS][0]
    await asyncio.wait_for(consumer.assigned.wait(), 30)
    pool = await create_pool(dsn, 2, 20)
    try:
        assert client.app[PG_POOL] is not None
        yield Catalog(client, pool, settings, bootstrap(settings, pool))
    finally:
        await close_pool(pool)
        await client.close()
