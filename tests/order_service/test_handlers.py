"""The service layer's handlers on the in-memory fakes (no IO): placing and reading orders, the
saga's reply batches and sweeps, the admin saga view, the users projection, housekeeping."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from order_service.domain import saga
from order_service.domain.commands import GetOrder, OrderSaga, PlaceOrder, UnfinishedSagas, UserOrders
from order_service.domain.errors import (
    IdempotencyKeyReusedError,
    OrderNotFoundError,
    ProductNotFoundError,
    ProductNotSellableError,
    UpstreamUnavailableError,
    UserNotFoundError,
)
from order_service.domain.order import OrderStatus, Product
from order_service.domain.saga import Step
from order_service.messaging.consumers import replies_handler, users_handler
from order_service.service import housekeeping, orders, saga_runner, sagas
from shared.events import orders as public
from shared.events import saga as ev
from shared.events.users import UserRegistered
from shared.messaging.envelope import Incoming
from tests.order_service.fakes import FakeKnownUsers, FakeWorld, fake_world

pytestmark = pytest.mark.asyncio

USER = 7
PRODUCTS = {
    10: Product(10, "Apple", 1000, "SELLABLE"),
    11: Product(11, "Pear", 2500, "SELLABLE"),
    12: Product(12, "Old", 700, "DISCONTINUED"),
}
REGISTERED = {USER: ("Kim", datetime(2026, 1, 1, tzinfo=UTC)), 8: ("Lee", datetime(2026, 1, 1, tzinfo=UTC))}


def world() -> FakeWorld:
    return fake_world(PRODUCTS, REGISTERED)


def place(key: str | None = None, items: dict[int, int] | None = None, **changes: object) -> PlaceOrder:
    cmd = PlaceOrder(user_id=USER, items=items or {11: 1, 10: 2}, user_coupon_id=None, idempotency_key=key)
    return replace(cmd, **changes)  # type: ignore[arg-type]


# --- place_order ------------------------------------------------------------------------------


async def test_place_order_stores_the_order_its_saga_and_first_command_in_one_statement() -> None:
    w = world()
    order = await orders.place_order(w.deps, place())
    assert order.status is OrderStatus.PENDING and order.total_amount == 4500
    assert [(ln.product_id, ln.quantity) for ln in order.lines] == [(10, 2), (11, 1)]
    state = w.db.state
    assert list(state.orders) == [order.order_id]
    assert [(m.topic, m.message.event_type) for m in state.outbox] == [("fake.saga.balance.commands", "DeductBalance")]
    assert [e.name for _, e in state.history] == ["DeductBalance"]
    assert state.sagas[order.order_id].state.step is Step.DEDUCTING_BALANCE
    assert w.waiter.waiting == {}  # nothing left subscribed
    assert w.waiter.waits == [(order.order_id, 10.0, False)]  # the order it created: no read first


async def test_a_known_user_costs_no_lookup_and_the_insert_is_one_statement() -> None:
    w = world()
    await orders.place_order(w.deps, place())  # the user gets known (projection and cache)
    before, lookups = w.db.statements, w.registry.calls
    await orders.place_order(w.deps, place(key="k"))
    # the insert with its Idempotency-Key, then the waiter's read (the fake waiter reads at once)
    assert w.db.statements - before == 1
    assert w.registry.calls == lookups


async def test_respond_async_waits_for_nothing() -> None:
    w = world()
    order = await orders.place_order(w.deps, place(respond_async=True))
    assert w.waiter.waits == [(order.order_id, 0.0, False)]


async def test_a_notice_finishes_the_created_order_without_a_read() -> None:
    w = world()

    def notify_on_wait(order_id: str, fut, timeout, *, read_first=True, created=None):  # type: ignore[no-untyped-def]
        w.waiter.notify({"order_id": order_id, "status": "COMPLETED", "discount_amount": 0, "paid_amount": 4500})
        return original(order_id, fut, timeout, read_first=read_first, created=created)

    original = w.waiter.wait
    w.waiter.wait = notify_on_wait  # type: ignore[method-assign]
    order = await orders.place_order(w.deps, place())
    assert order.status is OrderStatus.COMPLETED and order.paid_amount == 4500
    assert w.db.state.orders[order.order_id].status is OrderStatus.PENDING  # answered from the notice


async def test_the_same_key_and_body_replays_the_first_order() -> None:
    w = world()
    first = await orders.place_order(w.deps, place(key="k1"))
    again = await orders.place_order(w.deps, place(key="k1"))
    assert again.order_id == first.order_id
    assert len(w.db.state.orders) == 1 and len(w.db.state.outbox) == 1
    assert w.waiter.waits[-1] == (first.order_id, 10.0, True)  # the replay reads the order first
    assert w.waiter.waiting == {}
    other_user = await orders.place_order(w.deps, replace(place(key="k1"), user_id=8))
    assert other_user.order_id != first.order_id  # keys are scoped to the user


async def test_the_same_key_with_another_body_is_refused() -> None:
    w = world()
    await orders.place_order(w.deps, place(key="k1"))
    with pytest.raises(IdempotencyKeyReusedError):
        await orders.place_order(w.deps, place(key="k1", items={10: 3}))
    assert len(w.db.state.orders) == 1
    assert w.waiter.waiting == {}


async def test_a_replay_gets_the_first_answer_even_when_the_catalog_is_down() -> None:
    w = world()
    first = await orders.place_order(w.deps, place(key="k1"))
    w.catalog.down = True
    assert (await orders.place_order(w.deps, place(key="k1"))).order_id == first.order_id
    with pytest.raises(UpstreamUnavailableError):
        await orders.place_order(w.deps, place(key="k2"))
    assert len(w.db.state.orders) == 1


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        (place(items={10: 1, 99: 1}), ProductNotFoundError),
        (place(items={12: 1}), ProductNotSellableError),
        (replace(place(), user_id=404), UserNotFoundError),
    ],
)
async def test_refused_orders_write_nothing(cmd: PlaceOrder, error: type[Exception]) -> None:
    w = world()
    with pytest.raises(error):
        await orders.place_order(w.deps, cmd)
    assert w.db.state.orders == {} and w.db.state.outbox == []
    assert w.waiter.waiting == {}


async def test_an_unseen_user_is_looked_up_once_then_known() -> None:
    w = world()
    await orders.place_order(w.deps, place())
    await orders.place_order(w.deps, place())
    assert w.registry.calls == 1
    assert USER in w.db.state.users


async def test_a_coupon_order_reserves_it_first() -> None:
    w = world()
    await orders.place_order(w.deps, place(user_coupon_id=5))
    assert [(m.topic, m.message.event_type) for m in w.db.state.outbox] == [
        ("fake.saga.coupon.commands", "ReserveCoupon")
    ]


# --- reads ------------------------------------------------------------------------------------


async def test_get_order_and_a_users_orders() -> None:
    w = world()
    first = await orders.place_order(w.deps, place())
    second = await orders.place_order(w.deps, place())
    assert await orders.get_order(w.deps, GetOrder(first.order_id)) == first
    for missing in ("not-a-uuid", str(uuid.uuid4())):
        with pytest.raises(OrderNotFoundError):
            await orders.get_order(w.deps, GetOrder(missing))
    page = await orders.user_orders(w.deps, UserOrders(USER, 1))
    assert [o.order_id for o in page] == [second.order_id]
    rest = await orders.user_orders(w.deps, UserOrders(USER, 5, (page[0].created_at, page[0].order_id)))
    assert [o.order_id for o in rest] == [first.order_id]
    with pytest.raises(UserNotFoundError):
        await orders.user_orders(w.deps, UserOrders(404, 5))


# --- the saga ---------------------------------------------------------------------------------


async def _replies(w: FakeWorld, *messages: object) -> None:
    """Consume a batch of saga replies (the consumer's handler on the pipeline)."""
    batch = [Incoming("fake.saga.replies", 0, i, None, m) for i, m in enumerate(messages)]  # type: ignore[arg-type]
    await replies_handler(w.deps)(batch)


def _armed(w: FakeWorld, order_id: str) -> None:
    """The broker acknowledged the saga's last command just now."""
    row = w.db.state.sagas[order_id]
    row.state = saga.arm(row.state, row.state.send_id or "", w.db.now())


async def test_replies_move_the_saga_and_complete_the_order_exactly_once() -> None:
    w = world()
    order = await orders.place_order(w.deps, place())
    oid = order.order_id
    _armed(w, oid)
    deducted = ev.BalanceDeducted(order_id=oid, command_id=uuid.uuid4(), amount=4500, balance_after=0)
    await _replies(w, deducted, deducted)
    await _replies(w, deducted)  # redelivered: the inbox knows it
    assert w.db.state.sagas[oid].state.step is Step.DEDUCTING_STOCK
    assert [m.message.event_type for m in w.db.state.outbox] == ["DeductBalance", "DeductStock"]
    _armed(w, oid)
    not_a_reply = UserRegistered(user_id=1, name="x", created_at=datetime.now(UTC))
    await _replies(w, ev.StockDeducted(order_id=oid, command_id=uuid.uuid4()), not_a_reply)
    assert ("order-saga", not_a_reply.event_id) in w.db.state.inbox  # claimed, ignored
    done = w.db.state.orders[oid]
    assert (done.status, done.paid_amount) == (OrderStatus.COMPLETED, 4500)
    completed = w.db.state.outbox[-1]
    assert completed.topic == "fake.order.completed" and isinstance(completed.message, public.OrderCompleted)
    assert [i.product_id for i in completed.message.items] == [10, 11]
    assert [n["status"] for n in w.db.state.notices] == ["COMPLETED"]
    assert w.db.state.sagas[oid].state.step is Step.DONE


async def test_a_failed_reply_fails_the_order_with_its_code_and_nothing_kept() -> None:
    w = world()
    order = await orders.place_order(w.deps, place())
    _armed(w, order.order_id)
    failed = ev.BalanceDeductionFailed(order_id=order.order_id, command_id=uuid.uuid4(), code="INSUFFICIENT_BALANCE")
    await _replies(w, failed)
    stored = w.db.state.orders[order.order_id]
    assert (stored.status, stored.failure_code, stored.paid_amount) == (OrderStatus.FAILED, "INSUFFICIENT_BALANCE", 0)
    assert w.db.state.outbox[-1].topic == "fake.order.failed"


async def test_a_batch_that_fails_leaves_nothing_not_even_its_inbox_claim() -> None:
    w = world()
    order = await orders.place_order(w.deps, place())
    _armed(w, order.order_id)
    reply = ev.BalanceDeducted(order_id=order.order_id, command_id=uuid.uuid4(), amount=4500, balance_after=0)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the write failed")

    real = saga_runner._write
    saga_runner._write = broken  # type: ignore[assignment]
    try:
        with pytest.raises(RuntimeError):
            await _replies(w, reply)
    finally:
        saga_runner._write = real  # type: ignore[assignment]
    assert w.db.state.inbox == set()
    await _replies(w, reply)
    assert w.db.state.sagas[order.order_id].state.step is Step.DEDUCTING_STOCK


async def test_sweep_resends_an_overdue_step_and_leaves_unsent_ones() -> None:
    w = world()
    due = await orders.place_order(w.deps, place())
    waiting = await orders.place_order(w.deps, place())
    row = w.db.state.sagas[due.order_id]
    row.state = replace(row.state, send_id=None, attempts=1, deadline=w.db.now() - timedelta(minutes=1))
    assert await saga_runner.sweep(w.deps, 10) == 1
    assert await saga_runner.sweep(w.deps, 10) == 0  # re-sent: waits for its ack, no deadline
    resent = w.db.state.sagas[due.order_id].state
    assert resent.deadline is None and resent.send_id is not None and resent.attempts == 1
    assert [m.key for m in w.db.state.outbox].count(due.order_id) == 2
    assert w.db.state.sagas[waiting.order_id].state.send_id is not None
    assert [m.key for m in w.db.state.outbox].count(waiting.order_id) == 1


# --- the admin view, users, housekeeping ------------------------------------------------------


async def test_the_saga_view_and_the_unfinished_sagas() -> None:
    w = world()
    order = await orders.place_order(w.deps, place())
    row, entries = await sagas.order_saga(w.deps, OrderSaga(order.order_id))
    assert (str(row["order_id"]), row["step"], row["status"]) == (order.order_id, "DEDUCTING_BALANCE", "PENDING")
    assert [e["name"] for e in entries] == ["DeductBalance"]
    for missing in ("nope", str(uuid.uuid4())):
        with pytest.raises(OrderNotFoundError):
            await sagas.order_saga(w.deps, OrderSaga(missing))
    rows = await sagas.unfinished_sagas(w.deps, UnfinishedSagas(step=None, older_than_s=None, limit=5))
    assert [str(r["order_id"]) for r in rows] == [order.order_id]
    assert await sagas.unfinished_sagas(w.deps, UnfinishedSagas(step=None, older_than_s=3600, limit=5)) == []
    assert await sagas.unfinished_sagas(w.deps, UnfinishedSagas(step="COMPENSATING", older_than_s=None, limit=5)) == []


async def test_a_registered_user_is_remembered_once() -> None:
    w = world()
    when = datetime(2026, 2, 3, tzinfo=UTC)
    registered = UserRegistered(user_id=42, name="Park", created_at=when)
    batch = [Incoming("fake.user.registered", 0, 0, "42", registered)]
    await users_handler(w.deps)(batch)
    await users_handler(w.deps)(batch)
    assert w.db.state.users[42] == ("Park", when)
    assert ("order-users", registered.event_id) in w.db.state.inbox
    await FakeKnownUsers(w.db).add([(42, "Kim", when)])
    assert w.db.state.users[42] == ("Park", when)  # the first registration stays
    await orders.place_order(w.deps, replace(place(), user_id=42))
    assert w.registry.calls == 0  # known from the projection


async def test_housekeeping_expires_old_keys_only() -> None:
    w = world()
    await orders.place_order(w.deps, place(key="old"))
    await orders.place_order(w.deps, place(key="new"))
    request_hash, order_id, _ = w.db.state.keys[(USER, "old")]
    w.db.state.keys[(USER, "old")] = (request_hash, order_id, w.db.now() - timedelta(hours=49))
    await housekeeping.expire_idempotency_keys(w.deps)
    assert list(w.db.state.keys) == [(USER, "new")]
