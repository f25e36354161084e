"""Saga deadlines against the real PostgreSQL: armed by the relay's hook on the broker's ack (the
SQL twin of ``saga.arm``), compared on the database's clock, and the sweeper's hold."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from order_service.app import MIGRATIONS
from order_service.db import orders as orders_db
from order_service.db import sagas as repo
from order_service.db.sagas import COMMAND_TOPICS, arm_on_send
from order_service.db.unit_of_work import OrderSingleStatement, OrderUnitOfWork
from order_service.domain import saga
from order_service.domain.order import Order, OrderLine
from order_service.messaging.sweeper import run_sweeper
from order_service.service.deps import Deps
from order_service.service.saga_runner import COMMAND_TOPIC
from shared.db.migrations import migrate
from shared.db.outbox import Sent
from shared.db.pool import close_pool, create_pool
from shared.messaging.envelope import Outgoing
from shared.messaging.topics import Topics
from shared.wiring import cancel
from tests.order_service.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

POLICY = saga.Policy(step_timeout_s=7, max_attempts=3, backoff_cap_s=30)
TOPICS = Topics("timing.")


@pytest_asyncio.fixture
async def pool(new_database):
    dsn = await new_database("order")
    await migrate(dsn, MIGRATIONS)
    pool = await create_pool(dsn, 1, 4)
    yield pool
    await close_pool(pool)


async def _place(pool) -> saga.Decision:
    """A new order without a coupon, its DeductBalance in the outbox, not sent yet."""
    order = Order(
        order_id=str(uuid.uuid4()),
        user_id=1,
        lines=(OrderLine(10, "Apple", 1000, 2),),
        user_coupon_id=None,
        created_at=datetime.now(UTC),
    )
    state = saga.SagaState(order_id=order.order_id, user_id=1, total_amount=2000, lines=((10, 2),))
    decision = saga.start(state, datetime.now(UTC), POLICY)
    messages = [Outgoing(TOPICS(COMMAND_TOPIC[t]), order.order_id, c) for t, c in decision.commands]
    await orders_db.insert_order(pool, order, decision.state, messages)
    return decision


async def _row(pool, order_id: str):
    return await pool.fetchrow(
        "SELECT attempts, deadline, send_id, wait_s, clock_timestamp() AS db_now FROM sagas WHERE order_id = $1",
        order_id,
    )


async def test_the_acknowledged_send_arms_the_deadline_once(pool) -> None:
    decision = await _place(pool)
    oid, event_id = decision.state.order_id, decision.commands[0][1].event_id
    hook = arm_on_send(TOPICS)
    waiting = await _row(pool, oid)
    assert waiting["deadline"] is None and waiting["attempts"] == 0 and waiting["send_id"] == event_id
    assert waiting["wait_s"] == POLICY.step_timeout_s
    async with pool.acquire() as conn:
        # another command of the same order (an older send), and a non-command topic: nothing armed
        await hook(
            conn, [Sent(TOPICS(COMMAND_TOPICS[1]), oid, uuid.uuid4()), Sent(TOPICS("order.completed"), oid, event_id)]
        )
        assert (await _row(pool, oid))["deadline"] is None
        await hook(conn, [Sent(TOPICS(COMMAND_TOPICS[1]), oid, event_id)])
        armed = await _row(pool, oid)
        assert armed["attempts"] == 1 and armed["send_id"] is None
        left = armed["deadline"] - armed["db_now"]
        assert timedelta(0) < left <= timedelta(seconds=POLICY.step_timeout_s)
        await hook(conn, [Sent(TOPICS(COMMAND_TOPICS[1]), oid, event_id)])  # the same ack again
        again = await _row(pool, oid)
        assert (again["attempts"], again["deadline"]) == (1, armed["deadline"])
    # what the database holds is what the pure rule says
    state = repo._saga(await pool.fetchrow(f"SELECT {repo._TIMING}, data FROM sagas WHERE order_id = $1", oid))
    assert state == saga.arm(decision.state, str(event_id), state.deadline - timedelta(seconds=POLICY.step_timeout_s))


async def test_sweeper_leaves_unsent_sagas_alone_and_holds_while_told(pool) -> None:
    waiting = await _place(pool)
    due = await _place(pool)
    async with pool.acquire() as conn:  # acknowledged long ago: due on the database's clock
        await repo.arm_sent(conn, [due.state.order_id], [due.commands[0][1].event_id])
        await conn.execute(
            "UPDATE sagas SET deadline = now() - interval '1 minute' WHERE order_id = $1", due.state.order_id
        )
    hold = [True]
    ctx = Deps(
        uow=lambda: OrderUnitOfWork(pool),
        statement=lambda: OrderSingleStatement(pool),
        topics=TOPICS,
        policy=POLICY,
        catalog=None,
        users=None,
        waiter=None,
    )
    task = asyncio.create_task(run_sweeper(ctx, 0.05, 10, hold=lambda: hold[0]))
    try:
        await asyncio.sleep(0.5)
        assert (await _row(pool, due.state.order_id))["send_id"] is None  # on hold: not re-sent
        hold[0] = False

        async def resent():
            row = await _row(pool, due.state.order_id)
            return row if row["send_id"] is not None else None

        row = await eventually(resent, timeout=10)
    finally:
        await cancel(task)
    # the re-send waits for its ack: no deadline, the attempt not counted yet
    assert row["deadline"] is None and row["attempts"] == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE msg_key = $1", due.state.order_id) == 2
    # the saga whose command never left was not touched
    untouched = await _row(pool, waiting.state.order_id)
    assert untouched["deadline"] is None and untouched["attempts"] == 0
    assert untouched["send_id"] == waiting.commands[0][1].event_id
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE msg_key = $1", waiting.state.order_id) == 1
