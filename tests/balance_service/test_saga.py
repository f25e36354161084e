"""The saga's balance step: service-layer concurrency and end to end through the real Kafka topics."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from balance_service.db.unit_of_work import TransactionalUnitOfWork as UnitOfWork
from balance_service.domain.commands import Deduct, Refund
from balance_service.domain.payments import Deducted, DeductRefused, Refunded
from balance_service.service import payments
from shared.events.saga import (
    BalanceDeducted,
    BalanceDeductionFailed,
    BalanceRefunded,
    DeductBalance,
    RefundBalance,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _order() -> str:
    return str(uuid.uuid4())


async def _deduct(pool, user: int, amount: int, order_id: str | None = None):  # type: ignore[no-untyped-def]
    """The consumer's path without Kafka: one unit of work, the service-layer handler, commit."""
    for _ in range(10):
        try:
            async with UnitOfWork(pool) as uow:
                outcome = await payments.deduct(uow, Deduct(order_id or _order(), user, amount))
                await uow.commit()
                return outcome
        except Exception as exc:  # a deadlock would be retried by apply_batch too
            if "deadlock" not in str(exc):
                raise
    raise AssertionError("kept deadlocking")


async def _refund(pool, order_id: str) -> Refunded:  # type: ignore[no-untyped-def]
    async with UnitOfWork(pool) as uow:
        outcome = await payments.refund(uow, Refund(order_id))
        await uow.commit()
    return outcome


async def test_concurrent_deducts_exactly_ten_succeed(h, pool) -> None:
    user = await h.new_user(balance=10_000)
    outcomes = await asyncio.gather(*(_deduct(pool, user, 1000) for _ in range(100)))
    assert sum(isinstance(o, Deducted) for o in outcomes) == 10
    refused = [o for o in outcomes if isinstance(o, DeductRefused)]
    assert len(refused) == 90 and {o.code for o in refused} == {"INSUFFICIENT_BALANCE"}
    assert await h.balance(user) == 0
    uses = [i for i in (await h.history(user, limit=100))["items"] if i["type"] == "USE"]
    assert len(uses) == 10 and sorted(i["balance_after"] for i in uses) == list(range(0, 10_000, 1000))


async def test_charges_racing_deductions_end_exact(h, pool) -> None:
    user = await h.new_user(balance=5_000)
    charges = [h.charge(user, 1000) for _ in range(50)]
    deducts = [_deduct(pool, user, 1500) for _ in range(30)]
    results = await asyncio.gather(*charges, *deducts)
    assert all(r.status == 200 for r in results[:50])
    deducted = sum(1 for o in results[50:] if isinstance(o, Deducted))
    final = await h.balance(user)
    assert final == 5_000 + 50 * 1000 - deducted * 1500 and final >= 0
    history = (await h.history(user, limit=100))["items"]
    assert len(history) == 1 + 50 + deducted
    assert history[0]["balance_after"] == final


async def test_deduct_amount_zero_and_unknown_user(h, pool) -> None:
    user = await h.new_user(balance=100)
    assert await _deduct(pool, user, 0) == Deducted(0, 100)
    unknown = await _deduct(pool, 9_000_000_002, 10)
    assert isinstance(unknown, DeductRefused) and unknown.code == "USER_NOT_FOUND"
    assert await h.balance(user) == 100


async def test_service_layer_refund_rules(h, pool) -> None:
    user = await h.new_user(balance=5000)
    order = _order()
    assert await _deduct(pool, user, 2000, order) == Deducted(2000, 3000)
    assert await _deduct(pool, user, 2000, order) == Deducted(2000, 3000)  # re-sent: same answer
    assert await _refund(pool, order) == Refunded(2000)
    assert await _refund(pool, order) == Refunded(2000)  # again: same answer, nothing more
    assert await h.balance(user) == 5000
    late = await _deduct(pool, user, 2000, order)
    assert isinstance(late, DeductRefused) and late.code == "ALREADY_COMPENSATED"
    poor = _order()
    refused = await _deduct(pool, user, 9000, poor)
    assert isinstance(refused, DeductRefused) and refused.code == "INSUFFICIENT_BALANCE"
    await h.charge(user, 9000)
    assert await _deduct(pool, user, 9000, poor) == refused  # remembered: the same answer
    assert await _refund(pool, poor) == Refunded(0)
    assert await h.balance(user) == 14_000
    types = [i["type"] for i in (await h.history(user))["items"]]
    assert types == ["CHARGE", "REFUND", "USE", "CHARGE"]


async def test_e2e_deduct_delivered_three_times_deducts_once(h) -> None:
    user = await h.new_user(balance=5000)
    order = _order()
    cmd = DeductBalance(order_id=order, user_id=user, amount=1200)
    resent = DeductBalance(order_id=order, user_id=user, amount=1200)  # re-sent by the saga: new event_id
    await h.send_commands([cmd, cmd, cmd])
    await h.send_commands([resent])
    replies = await h.replies({order}, until=lambda rs: len(rs) >= 2)
    await asyncio.sleep(0.5)  # a duplicate reply would show up now
    replies = await h.replies({order}, until=lambda rs: len(rs) > 2, timeout=2)
    assert len(replies) == 2
    assert all(isinstance(r, BalanceDeducted) and r.amount == 1200 and r.balance_after == 3800 for r in replies)
    assert {r.command_id for r in replies} == {cmd.event_id, resent.event_id}
    assert await h.balance(user) == 3800
    assert [i["type"] for i in (await h.history(user))["items"]] == ["USE", "CHARGE"]


async def test_e2e_refund_before_deduct_fences_the_order(h) -> None:
    user = await h.new_user(balance=5000)
    order = _order()
    refund = RefundBalance(order_id=order)
    deduct = DeductBalance(order_id=order, user_id=user, amount=1000)
    await h.send_commands([refund, deduct])
    replies = await h.replies({order}, until=lambda rs: len(rs) >= 2)
    by_command = {r.command_id: r for r in replies}
    assert isinstance(by_command[refund.event_id], BalanceRefunded) and by_command[refund.event_id].amount == 0
    failed = by_command[deduct.event_id]
    assert isinstance(failed, BalanceDeductionFailed) and failed.code == "ALREADY_COMPENSATED"
    assert await h.balance(user) == 5000
    assert len((await h.history(user))["items"]) == 1


async def test_e2e_deduct_then_refund_restores(h) -> None:
    user = await h.new_user(balance=5000)
    ok, poor, ghost = _order(), _order(), _order()
    commands = [
        DeductBalance(order_id=ok, user_id=user, amount=3000),
        DeductBalance(order_id=poor, user_id=user, amount=3000),
        DeductBalance(order_id=ghost, user_id=9_000_000_003, amount=1),
        RefundBalance(order_id=ok),
    ]
    # ``ok`` must be deducted before ``poor`` asks for the rest: they are keyed by different orders,
    # so on different partitions, and a consumer may read one partition's record before another's.
    await h.send_commands(commands[:1])
    await h.replies({ok}, until=lambda rs: len(rs) >= 1)
    await h.send_commands(commands[1:])
    replies = await h.replies({ok, poor, ghost}, until=lambda rs: len(rs) >= 4)
    by_command = {r.command_id: r for r in replies}
    assert len(replies) == 4
    assert isinstance(by_command[commands[0].event_id], BalanceDeducted)
    assert by_command[commands[1].event_id].code == "INSUFFICIENT_BALANCE"
    assert by_command[commands[2].event_id].code == "USER_NOT_FOUND"
    assert by_command[commands[3].event_id].amount == 3000
    assert await h.balance(user) == 5000
    items = (await h.history(user))["items"]
    assert [(i["type"], i["amount"], i["order_id"]) for i in items[:2]] == [("REFUND", 3000, ok), ("USE", 3000, ok)]


async def test_e2e_hundred_deducts_through_kafka(h) -> None:
    user = await h.new_user(balance=10_000)
    commands = [DeductBalance(order_id=_order(), user_id=user, amount=1000) for _ in range(100)]
    await h.send_commands(commands)
    orders = {c.order_id for c in commands}
    replies = await h.replies(orders, until=lambda rs: len(rs) >= 100, timeout=60)
    assert len(replies) == 100
    assert sum(isinstance(r, BalanceDeducted) for r in replies) == 10
    assert {r.code for r in replies if isinstance(r, BalanceDeductionFailed)} == {"INSUFFICIENT_BALANCE"}
    assert await h.balance(user) == 0
