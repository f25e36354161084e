"""The hot paths keep their round trips on the real adapters: placing an order with an
Idempotency-Key is ONE statement (no BEGIN/COMMIT), a batch of saga replies is four (BEGIN, the
inbox claim fused with the lock of the sagas, one write, COMMIT) whatever the batch size, and so is
a sweep of overdue sagas (BEGIN, the lock, one write, COMMIT)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from order_service.app import MIGRATIONS
from order_service.db.unit_of_work import OrderSingleStatement, OrderUnitOfWork
from order_service.domain.commands import PlaceOrder
from order_service.domain.model import Product
from order_service.messaging.consumers import replies_handler
from order_service.service import orders, saga_runner
from order_service.service.deps import Deps
from shared.db.migrations import migrate
from shared.db.pool import close_pool, create_pool
from shared.events import saga as ev
from shared.known_users import KnownUsers
from shared.messaging.envelope import Incoming
from tests.order_service.fakes import POLICY, TOPICS, FakeCatalog, FakeDatabase, FakeRegistry, FakeWaiter

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


class AnswerAtOnce(FakeWaiter):
    """Answers with the order as created (no read: only the handler's statements are counted)."""

    async def wait(
        self, order_id: str, fut: Any, timeout: float, *, read_first: bool = True, created: Any = None
    ) -> Any:
        self.cancel(order_id, fut)
        return created


class Statements:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, record: Any) -> None:
        self.seen.append(" ".join(record.query.split())[:40])


@pytest_asyncio.fixture(loop_scope="session")
async def traced(new_database) -> AsyncIterator[tuple[Deps, Statements]]:
    dsn = await new_database("order_trips")
    await migrate(dsn, MIGRATIONS)
    pool = await create_pool(dsn, 1, 1)  # one connection: every statement goes through the logger
    statements = Statements()
    async with pool.acquire() as conn:
        conn.add_query_logger(statements)
    deps = Deps(
        uow=lambda: OrderUnitOfWork(pool),
        statement=lambda: OrderSingleStatement(pool),
        topics=TOPICS,
        policy=POLICY,
        catalog=FakeCatalog({10: Product(10, "Apple", 1000, "SELLABLE")}),
        users=KnownUsers(
            lambda: OrderSingleStatement(pool), FakeRegistry({7: ("Kim", datetime(2026, 1, 1, tzinfo=UTC))})
        ),
        waiter=AnswerAtOnce(FakeDatabase()),
    )
    yield deps, statements
    await close_pool(pool)


async def test_placing_an_order_with_a_key_is_one_statement(traced) -> None:
    deps, statements = traced
    await orders.place_order(deps, PlaceOrder(7, {10: 1}, None, "warm-up"))  # the user gets known
    statements.seen.clear()
    await orders.place_order(deps, PlaceOrder(7, {10: 2}, None, "k"))
    assert len(statements.seen) == 1 and statements.seen[0].startswith("WITH k AS ( INSERT INTO idempotency_keys")
    statements.seen.clear()
    await orders.place_order(deps, PlaceOrder(7, {10: 2}, None))
    assert len(statements.seen) == 1 and statements.seen[0].startswith("WITH o AS ( INSERT INTO orders")


@pytest.mark.parametrize("size", [1, 5])
async def test_a_batch_of_replies_is_four_statements(traced, size: int) -> None:
    deps, statements = traced
    for count in (1, size):  # the first batch also warms asyncpg's type cache of this connection
        placed = [await orders.place_order(deps, PlaceOrder(7, {10: 1}, None)) for _ in range(count)]
        statements.seen.clear()
        batch = [
            Incoming(
                "replies",
                0,
                0,
                o.order_id,
                ev.BalanceDeducted(order_id=o.order_id, command_id=uuid.uuid4(), amount=1000, balance_after=0),
            )
            for o in placed
        ]
        await replies_handler(deps)(batch)
    assert len(statements.seen) == 4, statements.seen
    assert statements.seen[0].startswith("BEGIN") and statements.seen[-1].startswith("COMMIT")


async def test_a_sweep_is_four_statements(traced) -> None:
    deps, statements = traced
    for _ in range(2):  # the first sweep also warms asyncpg's type cache of this connection
        placed = [await orders.place_order(deps, PlaceOrder(7, {10: 1}, None)) for _ in range(3)]
        async with deps.uow() as uow:
            _, states, _ = await uow.sagas.claim_and_lock("trips", [], [o.order_id for o in placed], "")
            overdue = [
                replace(s, send_id=None, attempts=1, deadline=datetime.now(UTC) - timedelta(minutes=1))
                for s in states.values()
            ]
            await uow.sagas.write(overdue, [], datetime.now(UTC), [])
            await uow.commit()
        statements.seen.clear()
        assert await saga_runner.sweep(deps, 1000) >= 3
    assert len(statements.seen) == 4, statements.seen
    assert statements.seen[0].startswith("BEGIN") and statements.seen[-1].startswith("COMMIT")
