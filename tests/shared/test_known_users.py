"""The known-users projection (shared.known_users): the repository suite on fakes and on
PostgreSQL, the lookup and the projection's consumer on fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import asyncpg
import pytest
import pytest_asyncio

from shared.db.known_users import PgKnownUsers
from shared.db.migrations import PLATFORM, migrate
from shared.db.pool import close_pool, create_pool
from shared.db.uow import SingleStatement, UnitOfWork
from shared.events.users import UserRegistered
from shared.known_users import KnownUsers, users_handler, users_registered
from shared.messaging.envelope import Incoming, Message
from tests.support.fakes import FakeDatabase, FakeKnownUsers, FakeUnitOfWork, FakeUserDirectory


class Other(Message):
    event_type: ClassVar[str] = "Other"


T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def registered(user_id: int, name: str = "ann", offset: int = 0) -> Incoming:
    msg = UserRegistered(user_id=user_id, name=name, created_at=T0)
    return Incoming("user.registered", 0, offset, str(user_id), msg)


class Users:
    """Repositories of the suite: ``users`` (as a service's unit of work exposes them)."""

    def __init__(self, users: Any) -> None:
        self.users = users


class FakeUsersUnitOfWork(FakeUnitOfWork[None]):
    def bind(self, state: Any) -> None:
        self.users = FakeKnownUsers(state)


class PgUsersUnitOfWork(UnitOfWork[None]):
    def bind(self, conn: asyncpg.Connection) -> None:
        self.users = PgKnownUsers(conn)


class PgUsersStatement(SingleStatement[None]):
    def bind(self, conn: asyncpg.Connection) -> None:
        self.users = PgKnownUsers(conn)


class KnownUsersSuite:
    """The repository contract; a subclass provides ``uow`` (a factory of units of work with ``users``)."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_added_users_are_known_and_the_first_record_stays(self, uow: Any) -> None:
        async with uow() as tx:
            assert not await tx.users.is_known(1)
            await tx.users.add([(1, "ann", T0), (2, "bob", T0), (1, "again", T0)])
            await tx.users.add([])
            await tx.commit()
        async with uow() as tx:
            assert await tx.users.is_known(1) and await tx.users.is_known(2)
            assert not await tx.users.is_known(3)

    async def test_an_uncommitted_add_is_not_kept(self, uow: Any) -> None:
        async with uow() as tx:
            await tx.users.add([(5, "eve", T0)])
        async with uow() as tx:
            assert not await tx.users.is_known(5)

    async def test_the_projection_consumer_applies_each_event_once(self, uow: Any) -> None:
        handle = users_handler(uow, "svc-users")
        first, second = registered(10, offset=0), registered(11, offset=1)
        await handle([first, second, first])
        await handle([first])
        async with uow() as tx:
            assert await tx.users.is_known(10) and await tx.users.is_known(11)


class TestKnownUsersOnFakes(KnownUsersSuite):
    @pytest.fixture
    def uow(self) -> Any:
        db = FakeDatabase()
        return lambda: FakeUsersUnitOfWork(db)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(new_database: Any) -> AsyncIterator[asyncpg.Pool]:
    dsn = await new_database("known_users")
    await migrate(dsn, [PLATFORM])
    pool = await create_pool(dsn, 1, 4)
    await pool.execute(
        "CREATE TABLE known_users (user_id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL)"
    )
    yield pool
    await close_pool(pool)


class TestKnownUsersOnPostgres(KnownUsersSuite):
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio, pytest.mark.integration]

    @pytest_asyncio.fixture(loop_scope="session")
    async def uow(self, pool: asyncpg.Pool) -> Any:
        await pool.execute("TRUNCATE known_users, inbox")
        return lambda: PgUsersUnitOfWork(pool)

    async def test_the_lookup_on_single_statements(self, pool: asyncpg.Pool) -> None:
        await pool.execute("TRUNCATE known_users")
        directory = FakeUserDirectory({7: ("gus", T0)})
        known = KnownUsers(lambda: PgUsersStatement(pool), directory)
        assert await known.exists(7)
        assert await pool.fetchval("SELECT name FROM known_users WHERE user_id = 7") == "gus"
        assert not await known.exists(8)


# -- the lookup, on fakes ----------------------------------------------------------------------------


def _lookup(directory: FakeUserDirectory, size: int = 100) -> tuple[KnownUsers, FakeDatabase]:
    db = FakeDatabase()
    return KnownUsers(lambda: FakeUsersUnitOfWork(db, single_statement=True), directory, size=size), db


@pytest.mark.asyncio
async def test_a_user_in_the_table_is_known_without_asking_balance() -> None:
    directory = FakeUserDirectory()
    known, db = _lookup(directory)
    async with FakeUsersUnitOfWork(db) as uow:
        await users_registered(uow, [registered(1)])
        await uow.commit()
    assert await known.exists(1)
    assert 1 in known
    assert directory.asked == []


@pytest.mark.asyncio
async def test_a_user_only_balance_knows_is_recorded_and_cached() -> None:
    directory = FakeUserDirectory({2: ("bob", T0)})
    known, db = _lookup(directory)
    assert await known.exists(2)
    assert db.state.tables["known_users"] == {2: ("bob", T0)}
    transactions = db.transactions
    assert await known.exists(2)  # cached: no IO at all
    assert db.transactions == transactions
    assert directory.asked == [2]


@pytest.mark.asyncio
async def test_an_unknown_user_is_not_cached_and_balance_down_is_raised() -> None:
    directory = FakeUserDirectory()
    known, _ = _lookup(directory)
    assert not await known.exists(3)
    assert not await known.exists(3)
    assert directory.asked == [3, 3]
    directory.down = True
    with pytest.raises(ConnectionError):
        await known.exists(4)


def test_the_cache_is_bounded_oldest_first() -> None:
    known, _ = _lookup(FakeUserDirectory(), size=2)
    known.remember([1, 2, 3])
    assert 1 not in known and 2 in known and 3 in known


@pytest.mark.asyncio
async def test_other_messages_are_ignored_by_the_projection() -> None:
    db = FakeDatabase()
    async with FakeUsersUnitOfWork(db) as uow:
        other = Incoming("x", 0, 0, None, Other())
        await users_registered(uow, [other, registered(1, "a")])
        await uow.commit()
    assert db.state.tables["known_users"] == {1: ("a", T0)}
