"""A running catalog app (real PostgreSQL + Kafka, private topics) and helpers to drive it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from catalog_service.app import create_app
from catalog_service.config import Settings
from catalog_service.service.stock import deduct_stock, restore_stock
from shared.db.pool import PG_POOL, close_pool, create_pool
from shared.db.uow import UnitOfWork
from shared.events.saga import DeductStock, RestoreStock, SagaReply, StockLine
from shared.wiring import CONSUMERS


@dataclass
class Catalog:
    client: TestClient
    pool: asyncpg.Pool  # a separate, larger pool for concurrent saga calls
    settings: Settings

    async def create(self, name: str = "thing", price: int = 1000, stock: int = 10) -> dict:
        resp = await self.client.post("/api/v1/admin/products", json={"name": name, "price": price, "stock": stock})
        assert resp.status == 201, await resp.text()
        return await resp.json()

    async def get(self, product_id: int) -> dict:
        resp = await self.client.get(f"/api/v1/products/{product_id}")
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def deduct(self, order_id: str, lines: list[tuple[int, int]]) -> SagaReply:
        command = DeductStock(order_id=order_id, lines=[StockLine(product_id=p, quantity=q) for p, q in lines])
        async with UnitOfWork(self.pool) as uow:
            reply = await deduct_stock(uow, command)
            await uow.commit()
        return reply

    async def restore(self, order_id: str) -> SagaReply:
        async with UnitOfWork(self.pool) as uow:
            reply = await restore_stock(uow, RestoreStock(order_id=order_id))
            await uow.commit()
        return reply


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
        yield Catalog(client, pool, settings)
    finally:
        await close_pool(pool)
        await client.close()
