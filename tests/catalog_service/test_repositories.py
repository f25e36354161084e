"""One suite for both adapters of ``catalog_service.service.ports``: the PostgreSQL repositories
(``catalog_service.db``, a fresh migrated database) and the in-memory fakes (``fakes.py``).

Every test runs twice: ``[fake]`` (unit, no IO) and ``[postgres]`` (integration), so the fakes
the handler tests rely on cannot drift from the real thing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import pytest
import pytest_asyncio

from catalog_service.app import MIGRATIONS
from catalog_service.db.unit_of_work import single_statement, unit_of_work
from catalog_service.domain.model import Product, ProductChange, ProductStatus, apply_change, new_product
from catalog_service.domain.stock import FailureCode, OrderRecord, OrderStockStatus, Refusal
from catalog_service.service.ports import Repositories, UnitOfWork
from shared.db.migrations import migrate
from shared.db.pool import close_pool, create_pool
from tests.catalog_service.fakes import FakeDatabase, FakeSingleStatement, FakeUnitOfWork

pytestmark = pytest.mark.asyncio

S = OrderStockStatus


@dataclass
class Adapters:
    uow: Callable[[], UnitOfWork]
    single_statement: Callable[[], Repositories]


@pytest_asyncio.fixture(scope="module")
async def catalog_pool(new_database) -> AsyncIterator[asyncpg.Pool]:
    dsn = await new_database("catalog_repos")
    await migrate(dsn, MIGRATIONS)
    pool = await create_pool(dsn, 1, 4)
    try:
        yield pool
    finally:
        await close_pool(pool)


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def adapters(request: pytest.FixtureRequest) -> Adapters:
    if request.param == "fake":
        db = FakeDatabase()
        return Adapters(lambda: FakeUnitOfWork(db), lambda: FakeSingleStatement(db))
    pool = request.getfixturevalue("catalog_pool")
    return Adapters(unit_of_work(pool), single_statement(pool))


def oid() -> str:
    return f"o-{uuid.uuid4().hex}"


async def add(adapters: Adapters, *products: Product) -> list[Product]:
    async with adapters.uow() as uow:
        stored = [await uow.products.add(p) for p in products]
        await uow.commit()
    return stored


async def test_an_added_product_reads_back_the_same(adapters: Adapters) -> None:
    [tea] = await add(adapters, new_product("tea", 1500, 0))
    assert tea.product_id > 0
    assert (tea.name, tea.price, tea.stock, tea.status) == ("tea", 1500, 0, ProductStatus.SOLD_OUT)
    assert tea.created_at is not None and tea.updated_at is not None
    async with adapters.single_statement() as repos:
        assert await repos.products.get(tea.product_id) == tea
        assert await repos.products.get(tea.product_id + 1000) is None


async def test_an_update_stores_every_field_but_the_id(adapters: Adapters) -> None:
    [tea] = await add(adapters, new_product("tea", 1500, 2))
    async with adapters.uow() as uow:
        locked = await uow.products.get(tea.product_id, for_update=True)
        assert locked == tea
        changed = apply_change(tea, ProductChange(name="green tea", price=7, stock=0))
        updated = await uow.products.update(changed)
        await uow.commit()
    assert (updated.product_id, updated.name, updated.price, updated.stock, updated.status) == (
        tea.product_id,
        "green tea",
        7,
        0,
        ProductStatus.SOLD_OUT,
    )
    async with adapters.single_statement() as repos:
        assert await repos.products.get(tea.product_id) == updated


async def test_what_is_not_committed_is_not_stored(adapters: Adapters) -> None:
    [kept] = await add(adapters, new_product("kept", 1, 1))
    async with adapters.uow() as uow:
        gone = await uow.products.add(new_product("gone", 1, 1))
        await uow.products.update(kept.with_stock(9))
        assert await uow.products.get(gone.product_id) is not None
    async with adapters.single_statement() as repos:
        assert await repos.products.get(gone.product_id) is None
        assert await repos.products.get(kept.product_id) == kept


async def test_pages_walk_the_ids_in_order_and_filter_sellable(adapters: Adapters) -> None:
    created = await add(adapters, *(new_product(f"p{i}", 1, i % 3) for i in range(6)))
    [off] = await add(adapters, new_product("off", 1, 5))
    async with adapters.uow() as uow:
        await uow.products.update(apply_change(off, ProductChange(status=ProductStatus.DISCONTINUED)))
        await uow.commit()
    ids = [p.product_id for p in created] + [off.product_id]
    start = ids[0] - 1
    async with adapters.single_statement() as repos:
        assert [p.product_id for p in await repos.products.page(only_sellable=False, after=start, limit=100)] == ids
        assert [p.product_id for p in await repos.products.page(only_sellable=False, after=ids[2], limit=2)] == ids[3:5]
        sellable = await repos.products.page(only_sellable=True, after=start, limit=100)
    assert [p.product_id for p in sellable] == [p.product_id for p in created if p.stock > 0]
    assert all(p.status is ProductStatus.SELLABLE for p in sellable)


async def test_fetch_and_lock_many_return_the_existing_ones_in_id_order(adapters: Adapters) -> None:
    a, b = await add(adapters, new_product("a", 1, 1), new_product("b", 1, 0))
    unknown = b.product_id + 1000
    async with adapters.single_statement() as repos:
        assert await repos.products.fetch_many([b.product_id, unknown, a.product_id]) == [a, b]
        assert await repos.products.fetch_many([]) == []
    async with adapters.uow() as uow:
        assert await uow.products.lock_many([unknown, b.product_id, a.product_id]) == {
            a.product_id: a,
            b.product_id: b,
        }


async def test_claims_record_new_orders_only(adapters: Adapters) -> None:
    first, second = oid(), oid()
    async with adapters.uow() as uow:
        assert await uow.order_stock.claim_many({}) == set()
        assert await uow.order_stock.claim_many({first: S.DEDUCTED, second: S.FENCED}) == {first, second}
        assert await uow.order_stock.claim_many({first: S.FENCED, (third := oid()): S.DEDUCTED}) == {third}
        records = await uow.order_stock.read_many([second, first, first, oid()])
        await uow.commit()
    assert records == {first: OrderRecord(S.DEDUCTED), second: OrderRecord(S.FENCED)}
    async with adapters.uow() as uow:
        assert await uow.order_stock.read_many([]) == {}


async def test_a_written_batch_reads_back(adapters: Adapters) -> None:
    a, b = await add(adapters, new_product("a", 1, 5), new_product("b", 1, 5))
    took, failed, huge, restored = oid(), oid(), oid(), oid()
    async with adapters.uow() as uow:
        await uow.order_stock.claim_many({took: S.DEDUCTED, failed: S.DEDUCTED, huge: S.DEDUCTED, restored: S.FENCED})
        await uow.order_stock.write_batch(
            [a.with_stock(3), b.with_stock(0)],
            {
                failed: OrderRecord(S.FAILED, Refusal(FailureCode.OUT_OF_STOCK, b.product_id)),
                huge: OrderRecord(S.FAILED, Refusal(FailureCode.PRODUCT_NOT_SELLABLE, 2**70)),
                restored: OrderRecord(S.RESTORED),
            },
            {took: {a.product_id: 2, b.product_id: 5}},
        )
        await uow.order_stock.write_batch([], {}, {})  # nothing to write
        await uow.commit()
    async with adapters.uow() as uow:
        records = await uow.order_stock.read_many([took, failed, huge, restored])
        locked = await uow.products.lock_for_batch([], [took])
    assert records == {
        took: OrderRecord(S.DEDUCTED, taken={a.product_id: 2, b.product_id: 5}),
        failed: OrderRecord(S.FAILED, Refusal(FailureCode.OUT_OF_STOCK, b.product_id)),
        huge: OrderRecord(S.FAILED, Refusal(FailureCode.PRODUCT_NOT_SELLABLE)),  # beyond bigint: kept as unknown
        restored: OrderRecord(S.RESTORED),
    }
    assert records[failed].replay() == Refusal(FailureCode.OUT_OF_STOCK, b.product_id)
    assert [(p.product_id, p.stock, p.status) for p in locked.values()] == [
        (a.product_id, 3, ProductStatus.SELLABLE),
        (b.product_id, 0, ProductStatus.SOLD_OUT),
    ]


async def test_lock_for_batch_takes_the_ids_and_what_the_orders_took(adapters: Adapters) -> None:
    a, b, c = await add(adapters, new_product("a", 1, 5), new_product("b", 1, 5), new_product("c", 1, 5))
    order = oid()
    async with adapters.uow() as uow:
        await uow.order_stock.claim_many({order: S.DEDUCTED})
        await uow.order_stock.write_batch([], {}, {order: {b.product_id: 1}})
        await uow.commit()
    async with adapters.uow() as uow:
        locked = await uow.products.lock_for_batch([c.product_id, a.product_id, 2**62], [order, oid()])
        assert list(locked) == [a.product_id, b.product_id, c.product_id]
        assert await uow.products.lock_for_batch([], []) == {}


async def test_the_inbox_claims_each_message_once_per_consumer(adapters: Adapters) -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    async with adapters.uow() as uow:
        assert await uow.inbox.claim_new("catalog", [one, one, two]) == {one, two}
        assert await uow.inbox.claim_new("catalog", [one]) == set()
        assert await uow.inbox.claim_new("other", [one]) == {one}
        assert await uow.inbox.claim_new("catalog", []) == set()
        await uow.commit()
    async with adapters.uow() as uow:
        assert await uow.inbox.claim_new("catalog", [two, (three := uuid.uuid4())]) == {three}
