"""One suite, two adapters: the PostgreSQL repositories (``ranking_service.db``) and the fakes
(``tests/ranking_service/fakes.py``) must behave alike, so handler tests on fakes mean something."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio

from ranking_service.app import MIGRATIONS
from ranking_service.db.unit_of_work import UnitsOfWork
from ranking_service.domain.model import CompletedOrder, ProductSales, RankedProduct, SoldItem, tally
from ranking_service.service.ports import UnitOfWorkFactory
from shared.db.migrations import migrate
from shared.db.pool import close_pool, create_pool
from tests.conftest import NewDatabase
from tests.ranking_service.fakes import FakeUnitsOfWork

pytestmark = pytest.mark.asyncio

SEOUL = ZoneInfo("Asia/Seoul")
DAY = date(2026, 11, 24)
NOON = datetime(2026, 11, 24, 3, tzinfo=UTC)  # 12:00 in Seoul


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def uow(request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    """Each test runs on both adapters (the PostgreSQL one only where the servers are)."""
    factory: UnitOfWorkFactory = request.getfixturevalue(f"{request.param}_uow")
    return factory


@pytest.fixture
def fake_uow() -> UnitOfWorkFactory:
    return FakeUnitsOfWork()


@pytest_asyncio.fixture
async def postgres_uow(new_database: NewDatabase) -> AsyncIterator[UnitOfWorkFactory]:
    dsn = await new_database("ranking")
    await migrate(dsn, MIGRATIONS)
    pool = await create_pool(dsn, 1, 3)
    try:
        yield UnitsOfWork(pool)
    finally:
        await close_pool(pool)


def _orders(*orders: tuple[datetime, tuple[int, str, int]]) -> list[CompletedOrder]:
    return [CompletedOrder(at, (SoldItem(*item),)) for at, item in orders]


async def test_an_order_is_claimed_once_by_event_and_for_good_by_order(uow: UnitOfWorkFactory) -> None:
    e1, e2, e3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with uow() as tx:
        assert await tx.orders.claim("ranking", []) == set()
        assert await tx.orders.claim("ranking", [(e1, "o1"), (e2, "o2"), (e1, "o1"), (e3, "o2")]) == {"o1", "o2"}
        await tx.commit()
    async with uow() as tx:
        again = uuid.uuid4()  # another event of an order already counted
        assert await tx.orders.claim("ranking", [(e1, "o1"), (again, "o2"), (uuid.uuid4(), "o3")]) == {"o3"}
        assert await tx.orders.claim("ranking", [(again, "o4")]) == set()  # the event is in the inbox now
        await tx.commit()


async def test_nothing_is_kept_unless_committed(uow: UnitOfWorkFactory) -> None:
    event = uuid.uuid4()
    async with uow() as tx:
        assert await tx.orders.claim("ranking", [(event, "o1")]) == {"o1"}
        await tx.sales.add(tally(_orders((NOON, (1, "one", 2))), SEOUL))
        await tx.batch_runs.claim(DAY, "a")
    async with uow() as tx:
        assert await tx.orders.claim("ranking", [(event, "o1")]) == {"o1"}
        assert await tx.sales.top(DAY, DAY, 5) == []
        assert await tx.batch_runs.done_since(DAY) == []


async def test_sales_add_up_and_rank_by_quantity_then_product_id(uow: UnitOfWorkFactory) -> None:
    yesterday = NOON - timedelta(days=1)
    async with uow() as tx:
        await tx.sales.add(tally(_orders((NOON, (3, "three", 2)), (NOON, (1, "one", 5))), SEOUL))
        await tx.sales.add(tally(_orders((NOON, (3, "three", 3)), (yesterday, (2, "two", 9))), SEOUL))
        await tx.commit()
    async with uow(single_statement=True) as reader:
        assert await reader.sales.top(DAY, DAY, 5) == [
            ProductSales(1, "one", 5, 1),
            ProductSales(3, "three", 5, 2),
        ]
        window = await reader.sales.top(DAY - timedelta(days=1), DAY, 2)
        assert window == [ProductSales(2, "two", 9, 1), ProductSales(1, "one", 5, 1)]
        assert await reader.sales.top(DAY + timedelta(days=1), DAY + timedelta(days=3), 5) == []


async def test_the_latest_name_wins_whatever_the_arrival_order(uow: UnitOfWorkFactory) -> None:
    async with uow() as tx:
        await tx.sales.add(tally(_orders((NOON, (7, "new", 1))), SEOUL))
        await tx.sales.add(tally(_orders((NOON - timedelta(hours=1), (7, "old", 1))), SEOUL))
        await tx.commit()
    async with uow(single_statement=True) as reader:
        assert await reader.sales.top(DAY, DAY, 5) == [ProductSales(7, "new", 2, 2)]


async def test_a_day_runs_once_and_a_rebuild_runs_it_again(uow: UnitOfWorkFactory) -> None:
    async with uow() as tx:
        assert await tx.batch_runs.claim(DAY, "a")
        assert not await tx.batch_runs.claim(DAY, "b")
        await tx.batch_runs.claim(DAY - timedelta(days=3), "a")
        await tx.commit()
    async with uow() as tx:
        await tx.batch_runs.mark_rebuilt(DAY, "b")
        await tx.batch_runs.mark_rebuilt(DAY - timedelta(days=1), "b")  # a day never run
        assert not await tx.batch_runs.claim(DAY - timedelta(days=1), "a")
        await tx.commit()
    async with uow(single_statement=True) as reader:
        done = await reader.batch_runs.done_since(DAY - timedelta(days=2))
        assert sorted(done) == [DAY - timedelta(days=1), DAY]


async def test_a_day_lock_is_held_until_the_unit_of_work_ends(uow: UnitOfWorkFactory) -> None:
    async with uow() as first:
        assert await first.batch_runs.try_lock(DAY)
        assert await first.batch_runs.try_lock(DAY)  # already ours
        async with uow() as second:
            assert not await second.batch_runs.try_lock(DAY)
            assert await second.batch_runs.try_lock(DAY + timedelta(days=1))
    async with uow() as third:
        assert await third.batch_runs.try_lock(DAY)
        await third.batch_runs.lock(DAY)
        await third.batch_runs.lock(DAY - timedelta(days=1))


async def test_a_snapshot_replaces_the_days_previous_one(uow: UnitOfWorkFactory) -> None:
    ranked = [RankedProduct(1, ProductSales(5, "five", 9, 3)), RankedProduct(2, ProductSales(2, "two", 1, 1))]
    async with uow() as tx:
        await tx.batch_runs.claim(DAY, "a")
        await tx.snapshots.save(DAY, ranked)
        await tx.snapshots.save(DAY - timedelta(days=1), ranked[:1])
        await tx.commit()
    async with uow() as tx:
        assert await tx.snapshots.get(DAY) == ranked
        await tx.snapshots.save(DAY, ranked[1:])
        assert await tx.snapshots.get(DAY) == ranked[1:]
        await tx.snapshots.save(DAY - timedelta(days=1), [])
        assert await tx.snapshots.get(DAY - timedelta(days=1)) == []
        assert await tx.snapshots.get(DAY + timedelta(days=1)) == []
        await tx.commit()
