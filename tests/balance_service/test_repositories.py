"""One suite, two adapters: the PostgreSQL repositories and the in-memory fakes must behave alike
(the fakes' case is a unit test; the PostgreSQL case needs the server and is ``integration``)."""

from __future__ import annotations

import uuid

import pytest

from balance_service.db.unit_of_work import PostgresUnitsOfWork
from balance_service.domain.commands import Deduct, Refund
from balance_service.domain.errors import PaymentRecordRacedError
from balance_service.domain.model import MAX_BALANCE
from balance_service.domain.payments import Deducted, PaymentStatus, Refunded, settle
from balance_service.service.ports import UnitOfWorkFactory
from tests.balance_service.fakes import FakeUnitsOfWork

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=["fake", pytest.param("postgres", marks=pytest.mark.integration)])
def units(request: pytest.FixtureRequest) -> UnitOfWorkFactory:
    if request.param == "fake":
        return FakeUnitsOfWork()
    return PostgresUnitsOfWork(request.getfixturevalue("pool"))


async def _user(units: UnitOfWorkFactory, balance: int = 0) -> int:
    async with units() as tx:
        user = await tx.users.add("repo-test")
        if balance:
            await tx.balances.charge(user.user_id, balance, MAX_BALANCE)
        await tx.commit()
    return user.user_id


def _order() -> str:
    return str(uuid.uuid4())


async def test_users_add_and_get(units: UnitOfWorkFactory) -> None:
    async with units() as tx:
        user = await tx.users.add("Kim")
        await tx.commit()
    async with units(single_statement=True) as single:
        assert await single.users.get(user.user_id) == user
        assert await single.users.get(9_000_000_100) is None
        balance = await single.balances.get(user.user_id)
        assert balance is not None and balance.balance == 0
        assert await single.balances.user_exists(user.user_id)
        assert not await single.balances.user_exists(9_000_000_100)


async def test_a_transaction_not_committed_leaves_nothing(units: UnitOfWorkFactory) -> None:
    async with units() as tx:
        user = await tx.users.add("gone")
    async with units(single_statement=True) as single:
        assert await single.users.get(user.user_id) is None


async def test_charge_limit_and_unknown_user(units: UnitOfWorkFactory) -> None:
    user = await _user(units, 100)
    async with units(single_statement=True) as single:
        assert await single.balances.charge(user, 50, MAX_BALANCE) == (100, 150, 0)
        assert await single.balances.charge(user, MAX_BALANCE, MAX_BALANCE) == (150, None, 0)
        assert await single.balances.charge(9_000_000_101, 5, MAX_BALANCE) == (None, None, None)
        history = await single.balances.history(user, 2**63 - 1, 10)
    assert [(h.type, h.amount, h.balance_after) for h in history] == [("CHARGE", 50, 150), ("CHARGE", 100, 100)]


async def test_charge_once_records_the_key_with_its_outcome(units: UnitOfWorkFactory) -> None:
    user = await _user(units)
    async with units(single_statement=True) as single:
        assert await single.balances.charge_once(user, 10, MAX_BALANCE, "k1", "charge:10") == (0, 10, 0)
        assert await single.balances.charge_once(user, 10, MAX_BALANCE, "k1", "charge:10") is None
        stored = await single.keys.stored(user, "k1")
        assert stored is not None and stored.fingerprint == "charge:10"
        assert stored.outcome == {"before": 0, "after": 10, "held": 0}
        assert await single.keys.stored(user, "k2") is None
        assert (await single.balances.get(user)).balance == 10  # type: ignore[union-attr]
        assert await single.keys.delete_older_than(0) >= 1
        assert await single.keys.stored(user, "k1") is None


async def test_charge_many(units: UnitOfWorkFactory) -> None:
    a, b = await _user(units), await _user(units, MAX_BALANCE - 5)
    async with units(single_statement=True) as single:
        done = await single.balances.charge_many([(a, 7), (b, 10), (9_000_000_102, 1)], MAX_BALANCE)
    assert done == {a: (0, 7, 0), b: (MAX_BALANCE - 5, None, 0), 9_000_000_102: None}


async def test_history_pages_newest_first(units: UnitOfWorkFactory) -> None:
    user = await _user(units)
    async with units(single_statement=True) as single:
        for amount in (1, 2, 3):
            await single.balances.charge(user, amount, MAX_BALANCE)
        newest = await single.balances.history(user, 2**63 - 1, 2)
        older = await single.balances.history(user, newest[-1].id, 2)
    assert [h.amount for h in newest] == [3, 2] and [h.amount for h in older] == [1]
    assert all(h.order_id is None for h in newest + older)


async def test_payments_claim_lock_write_and_release(units: UnitOfWorkFactory) -> None:
    user = await _user(units, 1000)
    kept, refunded, fenced = _order(), _order(), _order()
    ids = [uuid.uuid4(), uuid.uuid4()]
    commands = [Deduct(kept, user, 300), Deduct(refunded, user, 200), Refund(refunded), Refund(fenced)]
    async with units() as tx:
        new, records, balances = await tx.payments.claim_and_lock(
            "repo-test", ids, [kept, refunded, fenced], [user, 9_000_000_103]
        )
        assert new == set(ids) and records == {} and balances == {user: 1000}
        settlement = settle(commands, records, balances)
        assert settlement.outcomes == [Deducted(300, 700), Deducted(200, 500), Refunded(200), Refunded(0)]
        await tx.payments.write(settlement, [])
        await tx.commit()
    async with units() as tx:
        new, records, balances = await tx.payments.claim_and_lock("repo-test", ids, [kept, refunded, fenced], [])
        assert new == set()
        assert {o: (p.status, p.held) for o, p in records.items()} == {
            kept: (PaymentStatus.DEDUCTED, 300),
            refunded: (PaymentStatus.REFUNDED, 0),
            fenced: (PaymentStatus.REFUNDED, 0),
        }
        assert balances == {user: 700}
    async with units(single_statement=True) as single:
        assert await single.balances.charge(user, MAX_BALANCE - 700 - 299, MAX_BALANCE) == (700, None, 300)
        history = await single.balances.history(user, 2**63 - 1, 10)
        assert [(h.type, h.amount, h.order_id) for h in history[:3]] == [
            ("REFUND", 200, refunded),
            ("USE", 200, refunded),
            ("USE", 300, kept),
        ]
        assert await single.payments.release_held([kept, fenced]) == 1
        assert await single.payments.release_held([kept]) == 0
        assert await single.balances.charge(user, MAX_BALANCE - 700, MAX_BALANCE) == (700, MAX_BALANCE, 0)


async def test_a_record_written_by_another_transaction_fails_the_write(units: UnitOfWorkFactory) -> None:
    user = await _user(units, 100)
    order = _order()
    settlement = settle([Deduct(order, user, 10)], {}, {user: 100})
    async with units() as tx:
        await tx.payments.write(settlement, [])
        await tx.commit()
    with pytest.raises(PaymentRecordRacedError):
        async with units() as tx:
            await tx.payments.write(settlement, [])
            await tx.commit()
    async with units(single_statement=True) as single:
        assert (await single.balances.get(user)).balance == 90  # type: ignore[union-attr]


async def test_the_inbox_claims_once_with_the_transaction(units: UnitOfWorkFactory) -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    async with units() as tx:
        assert await tx.inbox.claim_new("repo-test", ids) == set(ids)
    async with units() as tx:  # the first was not committed
        assert await tx.inbox.claim_new("repo-test", ids[:1]) == {ids[0]}
        await tx.commit()
    async with units() as tx:
        assert await tx.inbox.claim_new("repo-test", ids) == {ids[1]}
        new, _, _ = await tx.payments.claim_and_lock("repo-test", ids, [], [])
        assert new == set()
