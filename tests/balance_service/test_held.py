"""Money held by orders in flight counts toward the limit until the order completes (API.md
"Users and balance"): HTTP charges against deductions and refunds of the saga (real Kafka topics,
real PostgreSQL), and order.completed releasing the hold."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from balance_service.domain.model import MAX_BALANCE
from shared.events.orders import OrderCompleted, OrderCompletedItem
from shared.events.saga import BalanceDeducted, BalanceRefunded, DeductBalance, RefundBalance
from shared.messaging import topics
from shared.messaging.envelope import Outgoing
from tests.balance_service.test_saga import _deduct, _refund
from tests.support.kafka import produce

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

HELD = 3_000_000


def _order() -> str:
    return str(uuid.uuid4())


async def _deducted(h, user: int, amount: int) -> str:  # type: ignore[no-untyped-def]
    order = _order()
    await h.send_commands([DeductBalance(order_id=order, user_id=user, amount=amount)])
    replies = await h.replies({order}, until=lambda rs: len(rs) >= 1)
    assert isinstance(replies[0], BalanceDeducted), replies
    return order


async def _complete(h, user: int, order: str, paid: int) -> None:  # type: ignore[no-untyped-def]
    """Publish the order's ``order.completed`` as order_service does (the contract's headers)."""
    topic = h.topic(topics.ORDER_COMPLETED)
    event = OrderCompleted(
        order_id=order,
        user_id=user,
        items=[OrderCompletedItem(product_id=1, name="p", unit_price=paid, quantity=1)],
        total_amount=paid,
        discount_amount=0,
        paid_amount=paid,
        user_coupon_id=None,
        completed_at=datetime.now(UTC),
    )
    out = Outgoing(topic, order, event, "req-held")
    await produce(
        h.settings.kafka_bootstrap,
        [(topic, order.encode(), out.value(), [(k, v.encode()) for k, v in out.headers().items()])],
    )


async def _held(h, user: int) -> int:  # type: ignore[no-untyped-def]
    conn = await asyncpg.connect(h.settings.database_url)
    try:
        return await conn.fetchval("SELECT held FROM balances WHERE user_id = $1", user)
    finally:
        await conn.close()


async def _until_accepted(h, user: int, amount: int):  # type: ignore[no-untyped-def]
    """Charge until accepted: the hold is released when balance consumes ``order.completed``."""
    for _ in range(300):
        resp = await h.charge(user, amount)
        if resp.status == 200:
            return resp
        assert resp.status == 409, await resp.text()
        await asyncio.sleep(0.1)
    raise AssertionError("the charge was never accepted")


async def test_charge_refused_while_an_order_holds_money_refund_never_refused(h) -> None:
    """The issue's story: 10,000,000; an order deducts 3,000,000; a charge of 3,000,000 is refused
    (the detail names the held amount); the order fails, the refund gives all back: 10,000,000."""
    user = await h.new_user(balance=MAX_BALANCE)
    order = await _deducted(h, user, HELD)
    assert await h.balance(user) == MAX_BALANCE - HELD
    for key in ({}, {"Idempotency-Key": f"k-{uuid.uuid4()}"}):
        resp = await h.charge(user, HELD, headers=key)
        problem = await resp.json()
        assert (resp.status, problem["code"]) == (409, "BALANCE_LIMIT_EXCEEDED"), problem
        assert f"{HELD} held by orders in flight" in problem["detail"], problem
    assert (await h.charge(user, 1)).status == 409
    assert await h.balance(user) == MAX_BALANCE - HELD
    await h.send_commands([RefundBalance(order_id=order)])
    replies = await h.replies({order}, until=lambda rs: len(rs) >= 2)
    assert isinstance(replies[-1], BalanceRefunded) and replies[-1].amount == HELD
    assert await h.balance(user) == MAX_BALANCE and await _held(h, user) == 0
    assert (await h.charge(user, 1)).status == 409


async def test_charge_accepted_once_the_order_completed(h) -> None:
    user = await h.new_user(balance=MAX_BALANCE)
    order = await _deducted(h, user, HELD)
    assert (await h.charge(user, HELD)).status == 409
    await _complete(h, user, order, HELD)
    resp = await _until_accepted(h, user, HELD)
    assert await resp.json() == {"user_id": user, "balance": MAX_BALANCE, "charged": HELD}
    await _complete(h, user, order, HELD)  # a redelivered event releases nothing more
    other = await _deducted(h, user, 1000)
    await _complete(h, user, other, 1000)  # a marker after the duplicate on the same topic
    await _until_accepted(h, user, 1000)
    assert await _held(h, user) == 0 and await h.balance(user) == MAX_BALANCE


async def test_charges_racing_deductions_and_refunds_never_pass_the_limit(h, pool) -> None:
    """Deductions do not make room for charges: 20 charges of 500,000 race 10 deductions of
    500,000 from 5,000,000; exactly 10 charges fit, whatever the interleaving, and refunding every
    order lands exactly on the limit, never above."""
    user = await h.new_user(balance=5_000_000)
    orders = [_order() for _ in range(10)]
    charges = [h.charge(user, 500_000) for _ in range(20)]
    deducts = [_deduct(pool, user, 500_000, order) for order in orders]
    results = await asyncio.gather(*charges, *deducts)
    assert sorted(r.status for r in results[:20]) == [200] * 10 + [409] * 10
    assert all(o.amount == 500_000 for o in results[20:])
    assert await h.balance(user) + await _held(h, user) == MAX_BALANCE
    await asyncio.gather(*(_refund(pool, order) for order in orders))
    assert await h.balance(user) == MAX_BALANCE and await _held(h, user) == 0
