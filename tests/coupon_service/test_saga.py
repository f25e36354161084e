"""The coupon step of the payment saga through the real saga topics."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from coupon_service.db.saga import record_raced
from coupon_service.db.unit_of_work import CouponUnitOfWork as UnitOfWork
from coupon_service.messaging.consumers import answer
from shared.db.pool import close_pool, create_pool
from shared.events import REGISTRY
from shared.events.saga import (
    ConfirmCoupon,
    CouponConfirmed,
    CouponReleased,
    CouponReservationFailed,
    CouponReserved,
    ReleaseCoupon,
    ReserveCoupon,
    SagaCommand,
)
from shared.messaging.envelope import Incoming, Outgoing
from shared.messaging.pipeline import Pipeline
from tests.coupon_service.conftest import Env, new_user_id
from tests.support.kafka import produce, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def _send(env: Env, *commands: SagaCommand) -> None:
    topic = f"{env.settings.kafka_topic_prefix}saga.coupon.commands"
    records = []
    for cmd in commands:
        out = Outgoing(topic, cmd.order_id, cmd)
        records.append((topic, out.key.encode(), out.value(), [(k, v.encode()) for k, v in out.headers().items()]))
    await produce(env.settings.kafka_bootstrap, records)


async def _replies(env: Env, orders: set[str], count: int) -> list:
    topic = f"{env.settings.kafka_topic_prefix}saga.replies"

    def mine(records: list) -> list:
        return [r for r in records if r.key.decode() in orders]

    records = await read_topic(env.settings.kafka_bootstrap, topic, until=lambda rs: len(mine(rs)) >= count)
    return [REGISTRY.decode(r).message for r in mine(records)]


async def _owned(env: Env, amount_type: str = "FIXED", value: int = 3000, minimum: int = 0) -> tuple[int, int]:
    user = new_user_id()
    coupon = await env.create_coupon(
        total_quantity=5, discount_type=amount_type, discount_value=value, min_order_amount=minimum
    )
    status, body = await env.call("POST", f"/api/v1/coupons/{coupon['coupon_id']}/issue", {"user_id": user})
    assert status == 201
    return user, body["user_coupon_id"]


async def _status(env: Env, user: int) -> list[tuple[int, str, bool]]:
    status, page = await env.call("GET", f"/api/v1/users/{user}/coupons?status=ALL")
    assert status == 200
    return [(i["user_coupon_id"], i["status"], i["used_at"] is not None) for i in page["items"]]


def _order() -> str:
    return str(uuid.uuid4())


async def test_reserve_confirm_with_redeliveries(coupon_env: Env) -> None:
    env = coupon_env
    user, uc = await _owned(env, "RATE", 15)
    order = _order()
    reserve = ReserveCoupon(order_id=order, user_id=user, user_coupon_id=uc, order_amount=10_001)
    resent = ReserveCoupon(order_id=order, user_id=user, user_coupon_id=uc, order_amount=10_001)
    confirm = ConfirmCoupon(order_id=order)
    await _send(env, reserve, reserve, resent)  # same event twice (dropped by the inbox), then a re-send
    replies = await _replies(env, {order}, 2)
    assert [type(r) for r in replies] == [CouponReserved, CouponReserved]
    assert [r.command_id for r in replies] == [reserve.event_id, resent.event_id]
    assert {(r.user_coupon_id, r.discount_amount) for r in replies} == {(uc, 1500)}
    assert await _status(env, user) == [(uc, "USED", True)]  # used at once: COMPLETED reads USED
    await _send(env, confirm, confirm, ConfirmCoupon(order_id=order))
    replies = await _replies(env, {order}, 4)
    assert [type(r) for r in replies[2:]] == [CouponConfirmed, CouponConfirmed]
    assert await _status(env, user) == [(uc, "USED", True)]
    await asyncio.sleep(0.5)  # a duplicate reply, if any, would be here by now
    assert len(await _replies(env, {order}, 4)) == 4


async def test_release_makes_available_and_fences(coupon_env: Env) -> None:
    env = coupon_env
    user, uc = await _owned(env)
    order, never = _order(), _order()
    await _send(
        env,
        ReserveCoupon(order_id=order, user_id=user, user_coupon_id=uc, order_amount=2000),
        ReleaseCoupon(order_id=order),
        ReleaseCoupon(order_id=order),
    )
    await _send(
        env,
        ReleaseCoupon(order_id=never),
        ReserveCoupon(order_id=never, user_id=user, user_coupon_id=uc, order_amount=50_000),
    )
    replies = await _replies(env, {order, never}, 5)
    by_order = {o: [r for r in replies if r.order_id == o] for o in (order, never)}
    first = by_order[order][0]
    assert isinstance(first, CouponReserved) and first.discount_amount == 2000  # never above the total
    assert [type(r) for r in by_order[order][1:]] == [CouponReleased, CouponReleased]
    assert isinstance(by_order[never][0], CouponReleased)
    late = by_order[never][1]
    assert isinstance(late, CouponReservationFailed) and late.code == "ALREADY_COMPENSATED"
    assert await _status(env, user) == [(uc, "AVAILABLE", False)]


async def test_unusable_coupons_are_refused(coupon_env: Env) -> None:
    env = coupon_env
    user, uc = await _owned(env, minimum=10_000)
    orders = [_order() for _ in range(3)]
    await _send(
        env,
        ReserveCoupon(order_id=orders[0], user_id=user, user_coupon_id=uc, order_amount=9_999),
        ReserveCoupon(order_id=orders[1], user_id=user + 1, user_coupon_id=uc, order_amount=20_000),
        ReserveCoupon(order_id=orders[2], user_id=user, user_coupon_id=10**15, order_amount=20_000),
    )
    replies = await _replies(env, set(orders), 3)
    assert {(type(r), r.code) for r in replies} == {(CouponReservationFailed, "COUPON_UNAVAILABLE")}
    assert await _status(env, user) == [(uc, "AVAILABLE", False)]


async def test_one_coupon_in_three_orders_through_the_topic(coupon_env: Env) -> None:
    env = coupon_env
    user, uc = await _owned(env)
    orders = [_order() for _ in range(3)]
    await _send(env, *(ReserveCoupon(order_id=o, user_id=user, user_coupon_id=uc, order_amount=9000) for o in orders))
    replies = await _replies(env, set(orders), 3)
    assert sorted(type(r).__name__ for r in replies) == [
        "CouponReservationFailed",
        "CouponReservationFailed",
        "CouponReserved",
    ]


async def test_one_coupon_in_three_concurrent_transactions(coupon_env: Env) -> None:
    env = coupon_env
    user, uc = await _owned(env)
    pool = await create_pool(env.settings.database_url, 3, 3)
    now = datetime.now(UTC)

    async def reserve(order: str) -> str:
        async with UnitOfWork(pool) as uow:
            cmd = ReserveCoupon(order_id=order, user_id=user, user_coupon_id=uc, order_amount=9000)
            reply = await answer(uow, cmd, now)
            await uow.commit()
            return type(reply).__name__

    try:
        results = await asyncio.gather(*(reserve(_order()) for _ in range(3)))
    finally:
        await close_pool(pool)
    assert sorted(results) == ["CouponReservationFailed", "CouponReservationFailed", "CouponReserved"]
    conn = await asyncpg.connect(env.settings.database_url)
    try:
        reserved = await conn.fetch("SELECT order_id FROM order_coupons WHERE user_coupon_id = $1", uc)
    finally:
        await conn.close()
    assert len(reserved) == 1


async def _blocked_on_a_lock(conn: asyncpg.Connection) -> None:
    """Until some other session of this database waits for a lock (our racing handler)."""
    while not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock')"
    ):
        await asyncio.sleep(0.02)


async def _race(env: Env, first: SagaCommand, second: SagaCommand) -> tuple[str, str]:
    """``first`` handled in a transaction left open while ``second`` (its handler retried on a
    record race, as the consumer does) runs in another and blocks on the order's key; then
    ``first`` commits. The replies' type names, as they were committed."""
    pool = await create_pool(env.settings.database_url, 2, 2)
    watch = await asyncpg.connect(env.settings.database_url)
    now = datetime.now(UTC)
    # the consumer's pipeline: the transaction runs again from a fresh read on a record race
    pipeline = Pipeline(lambda: UnitOfWork(pool), "race", retry_if=record_raced)

    async def apply(uow: UnitOfWork, items: list[Incoming]) -> str:
        return type(await answer(uow, items[0].message, now)).__name__

    async def run_second() -> list[str]:
        return await pipeline.apply_batch([Incoming("t", 0, 0, second.order_id, second)], apply)

    try:
        async with UnitOfWork(pool) as uow:
            reply = await answer(uow, first, now)
            task = asyncio.create_task(run_second())
            await asyncio.wait_for(_blocked_on_a_lock(watch), 10)
            await uow.commit()
        answers = await asyncio.wait_for(task, 10)
    finally:
        await watch.close()
        await close_pool(pool)
    return type(reply).__name__, answers[-1]


async def test_release_racing_a_reserve_of_its_order_releases(coupon_env: Env) -> None:
    """Reserve (open) then a release of the same order: the release must not overwrite the
    record and leave the coupon taken for a failed order; it is retried and releases."""
    env = coupon_env
    user, uc = await _owned(env)
    order = _order()
    reserve = ReserveCoupon(order_id=order, user_id=user, user_coupon_id=uc, order_amount=9000)
    assert await _race(env, reserve, ReleaseCoupon(order_id=order)) == ("CouponReserved", "CouponReleased")
    assert await _status(env, user) == [(uc, "AVAILABLE", False)]
    assert await _record_state(env, order) == "RELEASED"


async def test_reserve_racing_a_release_of_its_order_is_refused(coupon_env: Env) -> None:
    """Release (open, fences the order) then a reserve of the same order: the reserve must not
    overwrite the fence and take the coupon; it is retried and refused."""
    env = coupon_env
    user, uc = await _owned(env)
    order = _order()
    reserve = ReserveCoupon(order_id=order, user_id=user, user_coupon_id=uc, order_amount=9000)
    first, second = await _race(env, ReleaseCoupon(order_id=order), reserve)
    assert (first, second) == ("CouponReleased", "CouponReservationFailed")
    assert await _status(env, user) == [(uc, "AVAILABLE", False)]
    assert await _record_state(env, order) == "FENCED"


async def _record_state(env: Env, order: str) -> str:
    conn = await asyncpg.connect(env.settings.database_url)
    try:
        return await conn.fetchval("SELECT state FROM order_coupons WHERE order_id = $1", order)
    finally:
        await conn.close()
