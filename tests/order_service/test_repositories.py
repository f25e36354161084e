"""One suite, two adapters: the PostgreSQL repositories and the in-memory fakes must behave alike
(the fakes' case is a unit test; the PostgreSQL case needs the server and is ``integration``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from order_service.app import MIGRATIONS
from order_service.db.unit_of_work import OrderSingleStatement, OrderUnitOfWork
from order_service.domain import history, saga
from order_service.domain.order import Order, OrderLine, OrderStatus
from order_service.domain.saga import SagaState, Step
from order_service.service.ports import UnitOfWork
from shared.db.migrations import migrate
from shared.db.pool import close_pool, create_pool
from shared.events import saga as ev
from shared.messaging.envelope import Outgoing
from tests.order_service.fakes import FakeDatabase, FakeUnitOfWork

pytestmark = pytest.mark.asyncio(loop_scope="session")

POLICY = saga.Policy(step_timeout_s=5, max_attempts=3, backoff_cap_s=30)


@dataclass
class Units:
    uow: Callable[[], UnitOfWork]
    statement: Callable[[], UnitOfWork]


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def pool(new_database) -> AsyncIterator[object]:
    dsn = await new_database("order_repos")
    await migrate(dsn, MIGRATIONS)
    pool = await create_pool(dsn, 1, 4)
    yield pool
    await close_pool(pool)


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def units(request: pytest.FixtureRequest) -> Units:
    if request.param == "fake":
        db = FakeDatabase()
        return Units(lambda: FakeUnitOfWork(db), lambda: FakeUnitOfWork(db, single_statement=True))
    pool = request.getfixturevalue("pool")
    return Units(lambda: OrderUnitOfWork(pool), lambda: OrderSingleStatement(pool))


_users = iter(range(7_000_000_000, 8_000_000_000))


def _order(user_id: int | None = None, *, coupon: int | None = None, at: datetime | None = None) -> Order:
    return Order(
        order_id=str(uuid.uuid4()),
        user_id=user_id or next(_users),
        lines=(OrderLine(12, "Pear", 2500, 1), OrderLine(10, "Apple", 1000, 2)),
        user_coupon_id=coupon,
        created_at=at or datetime.now(UTC),
    )


def _start(order: Order) -> saga.Decision:
    state = SagaState(
        order_id=order.order_id,
        user_id=order.user_id,
        total_amount=order.total_amount,
        lines=tuple((ln.product_id, ln.quantity) for ln in order.lines),
        user_coupon_id=order.user_coupon_id,
    )
    return saga.start(state, order.created_at, POLICY)


def _messages(decision: saga.Decision) -> list[Outgoing]:
    return [Outgoing(f"repo.{who}", decision.state.order_id, cmd) for who, cmd in decision.commands]


async def _placed(units: Units, order: Order | None = None) -> tuple[Order, saga.Decision]:
    order = order or _order()
    decision = _start(order)
    async with units.statement() as uow:
        await uow.orders.add(order, decision.state, _messages(decision), history.sent(decision))
    return order, decision


def _by_product(order: Order) -> Order:
    return replace(order, lines=tuple(sorted(order.lines, key=lambda ln: ln.product_id)))


async def test_an_order_reads_back_with_its_lines_by_product(units: Units) -> None:
    order, _ = await _placed(units)
    async with units.statement() as uow:
        assert await uow.orders.get(order.order_id) == _by_product(order)
        assert await uow.orders.get(str(uuid.uuid4())) is None
        lines = await uow.orders.lines([order.order_id, str(uuid.uuid4())])
    assert lines == {order.order_id: list(_by_product(order).lines)}


async def test_a_users_orders_page_newest_first(units: Units) -> None:
    user = next(_users)
    base = datetime.now(UTC)
    placed = [(await _placed(units, _order(user, at=base + timedelta(seconds=i))))[0] for i in range(3)]
    async with units.statement() as uow:
        first = await uow.orders.of_user(user, 2, None)
        last = first[-1]
        rest = await uow.orders.of_user(user, 2, (last.created_at, last.order_id))
        other = await uow.orders.of_user(next(_users), 2, None)
    assert [o.order_id for o in first + rest] == [o.order_id for o in reversed(placed)]
    assert other == []


async def test_an_idempotency_key_takes_once_per_user(units: Units) -> None:
    order = _order()
    decision = _start(order)
    async with units.statement() as uow:
        assert await uow.orders.add_once(order, decision.state, _messages(decision), "k", "h1")
        again = _order(order.user_id)
        assert not await uow.orders.add_once(again, _start(again).state, [], "k", "h2")
        assert await uow.orders.get(again.order_id) is None
        assert await uow.keys.find(order.user_id, "k") == ("h1", order.order_id)
        assert await uow.keys.find(order.user_id, "other") is None
        someone = _order()
        assert await uow.orders.add_once(someone, _start(someone).state, [], "k", "h3")
        assert await uow.keys.find(someone.user_id, "k") == ("h3", someone.order_id)


async def test_keys_expire_after_their_hours(units: Units) -> None:
    order = _order()
    async with units.statement() as uow:
        await uow.orders.add_once(order, _start(order).state, [], "old", "h")
    async with units.statement() as uow:
        await uow.keys.expire(1)
        assert await uow.keys.find(order.user_id, "old") is not None
        await uow.keys.expire(0)
        assert await uow.keys.find(order.user_id, "old") is None


async def test_claim_and_lock_claims_each_message_once(units: Units) -> None:
    order, decision = await _placed(units)
    first, second = uuid.uuid4(), uuid.uuid4()
    times: dict[str, tuple[datetime, datetime]] = {}
    async with units.uow() as uow:
        new, states, lines = await uow.sagas.claim_and_lock(
            "repo-test", [first, first, second], [order.order_id, str(uuid.uuid4())], str(Step.DEDUCTING_STOCK), times
        )
        await uow.commit()
    assert new == {first, second}
    assert states == {order.order_id: decision.state}
    assert lines == {}
    assert list(times) == [order.order_id]
    async with units.uow() as uow:
        new, _, _ = await uow.sagas.claim_and_lock("repo-test", [first], [], str(Step.DEDUCTING_STOCK))
        other, _, _ = await uow.sagas.claim_and_lock("another", [first], [], str(Step.DEDUCTING_STOCK))
        await uow.commit()
    assert new == set() and other == {first}


async def test_a_transaction_not_committed_leaves_nothing(units: Units) -> None:
    order, _ = await _placed(units)
    message = uuid.uuid4()
    async with units.uow() as uow:
        await uow.sagas.claim_and_lock("repo-test", [message], [order.order_id], str(Step.DEDUCTING_STOCK))
        await uow.users.add([(next(_users), "gone", datetime.now(UTC))])
    async with units.uow() as uow:
        new, _, _ = await uow.sagas.claim_and_lock("repo-test", [message], [], str(Step.DEDUCTING_STOCK))
        await uow.commit()
    assert new == {message}


async def test_write_saves_sagas_finishes_orders_once_and_keeps_the_history(units: Units) -> None:
    order, decision = await _placed(units)
    reply = ev.BalanceDeducted(order_id=order.order_id, command_id=uuid.uuid4(), amount=4500, balance_after=0)
    moved = saga.transition(
        saga.arm(decision.state, decision.state.send_id or "", order.created_at), reply, order.created_at, POLICY
    )
    at = datetime.now(UTC)
    async with units.uow() as uow:
        _, states, lines = await uow.sagas.claim_and_lock(
            "repo-test", [uuid.uuid4()], [order.order_id], str(Step.DEDUCTING_STOCK)
        )
        await uow.sagas.write([moved.state], [], at, [], history.applied(states[order.order_id], reply, moved))
        await uow.commit()
    async with units.uow() as uow:
        _, states, lines = await uow.sagas.claim_and_lock(
            "repo-test", [uuid.uuid4()], [order.order_id], str(Step.DEDUCTING_STOCK)
        )
        assert states[order.order_id] == moved.state
        assert lines == {order.order_id: list(_by_product(order).lines)}  # about to complete: lines come along
        done = replace(moved.state, step=Step.DONE, paid_amount=4500)
        await uow.sagas.write([done], [(done, "COMPLETED", None)], at, [])
        await uow.sagas.write([done], [(replace(done, paid_amount=1), "FAILED", "LATE")], at, [])
        await uow.commit()
    async with units.statement() as uow:
        stored = await uow.orders.get(order.order_id)
        view = await uow.sagas.view(order.order_id)
    assert stored is not None
    assert (stored.status, stored.paid_amount, stored.failure_code) == (OrderStatus.COMPLETED, 4500, None)
    assert stored.completed_at == at
    assert view is not None
    row, entries = view
    assert (str(row["order_id"]), row["status"], row["step"]) == (order.order_id, "COMPLETED", "DONE")
    assert [(e["kind"], e["name"]) for e in entries] == [
        ("command", "DeductBalance"),
        ("reply", "BalanceDeducted"),
        ("command", "DeductStock"),
    ]


async def test_unfinished_sagas_oldest_first_by_step_and_age(units: Units) -> None:
    # started long ago, each run at its own second: older than any other saga of the database
    base = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(seconds=10 * (next(_users) % 1_000_000))
    placed = []
    for i in range(3):
        order, _ = await _placed(units, _order(coupon=5 if i == 1 else None, at=base + timedelta(seconds=i)))
        placed.append(order.order_id)
    before = base + timedelta(seconds=3)
    async with units.statement() as uow:
        rows = await uow.sagas.unfinished(step=None, started_before=before, limit=3, after=None)
        coupons = await uow.sagas.unfinished(step="RESERVING_COUPON", started_before=before, limit=100, after=None)
        page = await uow.sagas.unfinished(step=None, started_before=before, limit=1, after=(base, placed[0]))
        assert await uow.sagas.view(str(uuid.uuid4())) is None
    assert [str(r["order_id"]) for r in rows] == placed
    assert [(str(r["order_id"]), r["step"], r["status"]) for r in coupons] == [
        (placed[1], "RESERVING_COUPON", "PENDING")
    ]
    assert [str(r["order_id"]) for r in page] == [placed[1]]


async def test_lock_due_takes_overdue_sagas_only(units: Units) -> None:
    order, decision = await _placed(units)
    waiting, _ = await _placed(units)
    overdue = replace(decision.state, deadline=datetime.now(UTC) - timedelta(minutes=1), send_id=None, attempts=1)
    async with units.uow() as uow:
        await uow.sagas.write([overdue], [], datetime.now(UTC), [])
        await uow.commit()
    async with units.uow() as uow:
        now, due = await uow.sagas.lock_due(10_000)
        await uow.commit()
    assert now is not None
    ids = [s.order_id for s in due]
    assert order.order_id in ids and waiting.order_id not in ids
    assert next(s for s in due if s.order_id == order.order_id) == overdue


async def test_known_users(units: Units) -> None:
    user = next(_users)
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with units.statement() as uow:
        assert not await uow.users.is_known(user)
        await uow.users.add([(user, "Kim", when)])
        await uow.users.add([(user, "Lee", when), (user + 1, "Park", when)])
        await uow.users.add([])
        assert await uow.users.is_known(user) and await uow.users.is_known(user + 1)
