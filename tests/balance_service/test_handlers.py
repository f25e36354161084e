"""The service layer's handlers over the in-memory fakes: no server, no IO."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from balance_service.domain.commands import Charge, CreateUser, Deduct, Refund
from balance_service.domain.errors import (
    BalanceLimitExceededError,
    IdempotencyKeyReusedError,
    PaymentRecordRacedError,
    UserNotFoundError,
)
from balance_service.domain.model import MAX_BALANCE
from balance_service.domain.payments import Deducted, DeductRefused, Refunded, SagaOutcome
from balance_service.messaging import orders, saga
from balance_service.service import balances, idempotency, payments, users
from balance_service.service.balances import Charged, Charges
from shared.events.orders import OrderCompleted
from shared.events.saga import BalanceDeducted, BalanceRefunded, DeductBalance, RefundBalance
from shared.events.users import UserRegistered
from shared.messaging.envelope import Incoming, Outgoing
from tests.balance_service.fakes import FakePayments, FakeUnitsOfWork

pytestmark = pytest.mark.asyncio


@pytest.fixture
def uow() -> FakeUnitsOfWork:
    return FakeUnitsOfWork()


async def _user(uow: FakeUnitsOfWork, balance: int = 0) -> int:
    user = await users.create_user(uow, CreateUser("Kim"), topic="t.user.registered")
    if balance:
        await balances.charge_alone(uow, Charge(user.user_id, balance))
    return user.user_id


async def test_create_user_announces_it_through_the_outbox(uow: FakeUnitsOfWork) -> None:
    user = await users.create_user(uow, CreateUser("Kim"), topic="t.user.registered")
    assert await users.get_user(uow, user.user_id) == user
    [out] = uow.db.state.outbox
    assert out.topic == "t.user.registered" and out.key == str(user.user_id)
    assert isinstance(out.message, UserRegistered) and out.message.name == "Kim"
    assert (await balances.get_balance(uow, user.user_id)).balance == 0
    with pytest.raises(UserNotFoundError):
        await users.get_user(uow, 12345)


async def test_reads_and_charges_run_in_single_statement_mode(uow: FakeUnitsOfWork) -> None:
    user = await _user(uow)
    uow.opened.clear()
    await balances.charge_alone(uow, Charge(user, 5))
    await balances.get_balance(uow, user)
    await balances.history(uow, user, before_id=None, limit=5)
    await users.get_user(uow, user)
    assert [u._single for u in uow.opened] == [True] * 4


async def test_charge_limit_and_unknown_user(uow: FakeUnitsOfWork) -> None:
    user = await _user(uow, MAX_BALANCE - 10)
    assert await balances.charge_alone(uow, Charge(user, 10)) == Charged(user, MAX_BALANCE, 10)
    with pytest.raises(BalanceLimitExceededError):
        await balances.charge_alone(uow, Charge(user, 1))
    with pytest.raises(UserNotFoundError):
        await balances.charge_alone(uow, Charge(999, 1))


async def test_keyed_charge_replays_its_first_outcome(uow: FakeUnitsOfWork) -> None:
    user = await _user(uow, 100)
    first = await balances.charge_alone(uow, Charge(user, 50, "k"))
    assert first == Charged(user, 150, 50)
    await balances.charge_alone(uow, Charge(user, 1))
    assert await balances.charge_alone(uow, Charge(user, 50, "k")) == first  # replayed, not charged
    assert (await balances.get_balance(uow, user)).balance == 151
    with pytest.raises(IdempotencyKeyReusedError):
        await balances.charge_alone(uow, Charge(user, 51, "k"))
    refused = Charge(user, MAX_BALANCE, "big")
    for _ in range(2):  # a refusal is replayed too
        with pytest.raises(BalanceLimitExceededError):
            await balances.charge_alone(uow, refused)


async def test_concurrent_charges_share_batches_and_end_exact(uow: FakeUnitsOfWork) -> None:
    a, b = await _user(uow), await _user(uow)
    charges = Charges(uow)
    plan = [(a, 1), (b, 2), (a, 3), (999, 4), (b, 5)] * 10
    results = await asyncio.gather(*(balances.charge(charges, Charge(u, n)) for u, n in plan), return_exceptions=True)
    assert sum(isinstance(r, UserNotFoundError) for r in results) == 10
    assert (await balances.get_balance(uow, a)).balance == 40
    assert (await balances.get_balance(uow, b)).balance == 70
    assert charges.batcher.batches < len(plan)
    await charges.batcher.aclose()


async def test_history_pages_and_unknown_user(uow: FakeUnitsOfWork) -> None:
    user = await _user(uow)
    for n in (1, 2, 3):
        await balances.charge_alone(uow, Charge(user, n))
    page = await balances.history(uow, user, before_id=None, limit=2)
    assert [e.amount for e in page] == [3, 2]
    assert [e.amount for e in await balances.history(uow, user, before_id=page[-1].id, limit=2)] == [1]
    assert await balances.history(uow, await _user(uow), before_id=None, limit=2) == []
    with pytest.raises(UserNotFoundError):
        await balances.history(uow, 999, before_id=None, limit=2)


def _batch(messages: list[DeductBalance | RefundBalance]) -> list[Incoming]:
    return [Incoming("cmds", 0, n, m.order_id, m, "req") for n, m in enumerate(messages)]


def _reply_of(seen: list[SagaOutcome]):  # type: ignore[no-untyped-def]
    def reply_of(item: Incoming, outcome: SagaOutcome) -> Outgoing:
        seen.append(outcome)
        answer = saga.reply(item.message, outcome)
        return Outgoing("replies", answer.order_id, answer, item.request_id)

    return reply_of


async def test_a_batch_applies_in_order_once(uow: FakeUnitsOfWork) -> None:
    user = await _user(uow, 1000)
    o1, o2 = str(uuid.uuid4()), str(uuid.uuid4())
    dup = DeductBalance(order_id=o1, user_id=user, amount=600)
    batch = _batch([dup, dup, DeductBalance(order_id=o2, user_id=user, amount=600), RefundBalance(order_id=o1)])
    seen: list[SagaOutcome] = []
    await saga.apply_commands(uow, batch, _reply_of(seen))
    assert seen == [
        Deducted(600, 400),
        DeductRefused("INSUFFICIENT_BALANCE", "balance 400 is less than the amount due 600"),
        Refunded(600),
    ]
    replies = [o.message for o in uow.db.state.outbox if o.topic == "replies"]
    assert [type(r) for r in replies] == [BalanceDeducted, type(replies[1]), BalanceRefunded]
    assert (await balances.get_balance(uow, user)).balance == 1000
    seen.clear()
    await saga.apply_commands(uow, batch, _reply_of(seen))
    assert seen == []  # redelivered: nothing applied, nothing answered


async def test_a_record_raced_by_another_instance_applies_the_batch_again(
    uow: FakeUnitsOfWork, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await _user(uow, 1000)
    order = str(uuid.uuid4())
    write = FakePayments.write
    raced: list[bool] = []

    async def racing_write(self: FakePayments, settlement, messages) -> None:  # type: ignore[no-untyped-def]
        if not raced:  # another instance refunds the order first
            raced.append(True)
            async with uow() as other:
                await payments.refund(other, Refund(order))
                await other.commit()
            raise PaymentRecordRacedError("order_payments_pkey")
        await write(self, settlement, messages)

    monkeypatch.setattr(FakePayments, "write", racing_write)
    seen: list[SagaOutcome] = []
    batch = _batch([DeductBalance(order_id=order, user_id=user, amount=100)])
    await saga.apply_commands(uow, batch, _reply_of(seen))
    assert seen[-1] == DeductRefused("ALREADY_COMPENSATED", f"order {order} was already refunded")
    assert (await balances.get_balance(uow, user)).balance == 1000


async def test_deduct_and_refund_in_the_callers_unit_of_work(uow: FakeUnitsOfWork) -> None:
    user = await _user(uow, 500)
    order = str(uuid.uuid4())
    async with uow() as tx:
        assert await payments.deduct(tx, Deduct(order, user, 200)) == Deducted(200, 300)
    assert (await balances.get_balance(uow, user)).balance == 500  # not committed
    async with uow() as tx:
        assert await payments.deduct(tx, Deduct(order, user, 200)) == Deducted(200, 300)
        assert await payments.refund(tx, Refund(order)) == Refunded(200)
        await tx.commit()
    assert (await balances.get_balance(uow, user)).balance == 500


async def test_release_held_lets_the_limit_count_the_money_again(uow: FakeUnitsOfWork) -> None:
    user = await _user(uow, MAX_BALANCE - 100)
    order = str(uuid.uuid4())
    async with uow() as tx:
        await payments.deduct(tx, Deduct(order, user, 1000))
        await tx.commit()
    with pytest.raises(BalanceLimitExceededError):
        await balances.charge_alone(uow, Charge(user, 1000))
    release = orders.completed_handler(uow)
    completed = [
        Incoming("completed", 0, n, order, OrderCompleted.model_construct(order_id=order), "r") for n in (1, 2)
    ]
    await release(completed[:1])
    await release(completed[1:])  # redelivered: no change
    assert uow.opened[-1]._single  # one statement, no transaction
    assert await balances.charge_alone(uow, Charge(user, 1000)) == Charged(user, MAX_BALANCE - 100, 1000)


async def test_housekeeping_expires_old_keys_only(uow: FakeUnitsOfWork) -> None:
    user = await _user(uow)
    await balances.charge_alone(uow, Charge(user, 1, "old"))
    uow.db.advance(hours=49)
    await balances.charge_alone(uow, Charge(user, 1, "new"))
    assert await idempotency.expire_keys(uow, key_hours=48) == 1
    assert {k for _, k in uow.db.state.keys} == {"new"}
