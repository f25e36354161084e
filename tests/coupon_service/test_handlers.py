"""The service handlers on the fakes (no IO): the outcomes of each use case, in the contract's order."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from coupon_service.domain.commands import CreateCoupon, GetCoupon, IssueCoupon, RegisterUser, UserCoupons
from coupon_service.domain.errors import (
    CouponAlreadyIssuedError,
    CouponError,
    CouponNotFoundError,
    CouponNotIssuableError,
    CouponSoldOutError,
    InvalidCouponError,
    UserDirectoryUnavailableError,
    UserNotFoundError,
)
from coupon_service.domain.model import Coupon, CouponTerms, DiscountType
from coupon_service.messaging.consumers import answer
from coupon_service.service import saga
from coupon_service.service.coupons import create_coupon, get_coupon, issue_alone
from coupon_service.service.issuing import issue_coupon
from coupon_service.service.user_coupons import user_coupons
from coupon_service.service.users import register_user
from shared.events.saga import (
    ConfirmCoupon,
    CouponConfirmed,
    CouponReleased,
    CouponReservationFailed,
    CouponReserved,
    ReleaseCoupon,
    ReserveCoupon,
)
from tests.coupon_service.fakes import FakeDatabase, FakeDirectory, FakeUnitOfWork, RecordRacedError, fake_deps

pytestmark = pytest.mark.asyncio

NOW = datetime.now(UTC)
UNKNOWN = 900_000_001


def _terms(quantity: int = 3, **kw: object) -> CouponTerms:
    values: dict = {
        "name": "c",
        "discount_type": DiscountType.FIXED,
        "discount_value": 1000,
        "total_quantity": quantity,
        "valid_days": 7,
        **kw,
    }
    return CouponTerms(**values)


def _setup(*known: int, users: dict[int, str] | None = None):  # type: ignore[no-untyped-def]
    db = FakeDatabase()
    for user_id in known:
        db.known[user_id] = (f"u{user_id}", NOW)
    directory = FakeDirectory(users)
    return db, directory, fake_deps(db, directory)


async def _issue(deps, coupon: Coupon, user_id: int, now: datetime = NOW):  # type: ignore[no-untyped-def]
    return await issue_coupon(deps.issuer, IssueCoupon(coupon.coupon_id, user_id, now))


async def test_create_validates_and_get_counts_issued_copies() -> None:
    db, _, deps = _setup(1)
    with pytest.raises(InvalidCouponError):
        await create_coupon(deps.coupons, CreateCoupon(_terms(discount_type=DiscountType.RATE, discount_value=101)))
    assert not db.coupons
    coupon = await create_coupon(deps.coupons, CreateCoupon(_terms(2)))
    assert await get_coupon(deps.coupons, GetCoupon(coupon.coupon_id)) == (coupon, 0)
    await _issue(deps, coupon, 1)
    assert await get_coupon(deps.coupons, GetCoupon(coupon.coupon_id)) == (coupon, 1)
    with pytest.raises(CouponNotFoundError):
        await get_coupon(deps.coupons, GetCoupon(10**9))


async def test_a_remembered_coupon_costs_no_statement() -> None:
    db, _, deps = _setup()
    coupon = await create_coupon(deps.coupons, CreateCoupon(_terms()))
    before = db.statements
    assert await deps.coupons.find(coupon.coupon_id) == coupon
    assert db.statements == before


async def test_issue_outcomes_in_contract_order() -> None:
    _, _, deps = _setup(1, 2)
    one = await create_coupon(deps.coupons, CreateCoupon(_terms(1)))
    missing = Coupon(10**9, one.terms, NOW)
    with pytest.raises(UserNotFoundError):
        await _issue(deps, missing, UNKNOWN)  # unknown user before unknown coupon
    with pytest.raises(CouponNotFoundError):
        await _issue(deps, missing, 1)
    with pytest.raises(UserNotFoundError):
        await _issue(deps, one, UNKNOWN)
    issued = await _issue(deps, one, 1)
    assert (issued.coupon_id, issued.user_id, issued.status) == (one.coupon_id, 1, "AVAILABLE")
    with pytest.raises(CouponAlreadyIssuedError):
        await _issue(deps, one, 1)  # also sold out: already issued wins
    with pytest.raises(CouponSoldOutError):
        await _issue(deps, one, 2)
    assert deps.coupons.is_sold_out(one.coupon_id)


async def test_outside_the_window_a_holder_hears_already_issued_and_others_not_issuable() -> None:
    _, _, deps = _setup(1, 2)
    coupon = await create_coupon(deps.coupons, CreateCoupon(_terms(1, issue_ends_at=NOW + timedelta(hours=1))))
    await _issue(deps, coupon, 1)
    later = NOW + timedelta(hours=2)
    with pytest.raises(CouponAlreadyIssuedError):
        await _issue(deps, coupon, 1, later)
    with pytest.raises(CouponNotIssuableError):
        await _issue(deps, coupon, 2, later)
    with pytest.raises(UserNotFoundError):
        await _issue(deps, coupon, UNKNOWN, later)
    not_yet = await create_coupon(deps.coupons, CreateCoupon(_terms(issue_starts_at=NOW + timedelta(hours=1))))
    with pytest.raises(CouponNotIssuableError):
        await issue_alone(deps.coupons, IssueCoupon(not_yet.coupon_id, 2, NOW))


async def test_a_spike_is_batched_with_the_same_outcomes() -> None:
    users = list(range(1, 301))
    _, directory, deps = _setup(*users)
    coupon = await create_coupon(deps.coupons, CreateCoupon(_terms(100)))

    async def one(user_id: int) -> str:
        try:
            await _issue(deps, coupon, user_id)
        except CouponError as exc:
            return type(exc).__name__
        return "ISSUED"

    batches, items = deps.issuer.batcher.batches, deps.issuer.batcher.items
    outcomes = await asyncio.gather(*(one(u) for u in users + users[:50]))
    assert Counter(outcomes) == Counter({"ISSUED": 100, "CouponSoldOutError": 200, "CouponAlreadyIssuedError": 50})
    assert deps.issuer.batcher.items - items == 350
    assert deps.issuer.batcher.batches - batches < 350
    assert not directory.lookups  # the projection answered
    assert deps.coupons.is_sold_out(coupon.coupon_id)


async def test_unknown_users_in_a_batch_go_alone_and_are_asked_about() -> None:
    _, directory, deps = _setup(1, 2, users={3: "lee"})
    coupon = await create_coupon(deps.coupons, CreateCoupon(_terms(10)))
    alone = deps.issuer.alone
    outcomes = await asyncio.gather(*(_issue(deps, coupon, u) for u in (1, 2, 3, UNKNOWN)), return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["IssuedCoupon"] * 3 + ["UserNotFoundError"]
    assert deps.issuer.alone - alone == 2
    assert sorted(directory.lookups) == [3, UNKNOWN]


async def test_known_users_ask_balance_once_and_say_when_it_cannot_answer() -> None:
    db, directory, deps = _setup(users={7: "kim"})
    await deps.users.require(7)
    await deps.users.require(7)
    assert directory.lookups == [7] and 7 in db.known
    directory.down = True
    with pytest.raises(UserDirectoryUnavailableError):
        await deps.users.require(8)
    await register_user(FakeUnitOfWork(db), RegisterUser(9, "park", NOW))
    await register_user(FakeUnitOfWork(db), RegisterUser(9, "park", NOW))
    await deps.users.require(9)  # projected: balance is not asked
    assert directory.lookups == [7, 8]


async def test_user_coupons_pages_and_derives_expired() -> None:
    db, _, deps = _setup(1)
    issued = []
    for _ in range(3):
        coupon = await create_coupon(deps.coupons, CreateCoupon(_terms(1)))
        issued.append(await _issue(deps, coupon, 1))
    db.copies[issued[0].user_coupon_id].expires_at = NOW - timedelta(days=1)
    page = await user_coupons(deps.single, deps.users, UserCoupons(1, False, None, 10, NOW))
    assert [i.user_coupon_id for i in page.items] == [issued[2].user_coupon_id, issued[1].user_coupon_id]
    assert page.after is None
    seen, after = [], None
    while True:
        page = await user_coupons(deps.single, deps.users, UserCoupons(1, True, after, 2, NOW))
        seen += [(i.user_coupon_id, i.status) for i in page.items]
        if page.after is None:
            break
        after = page.after
    assert seen == [(c.user_coupon_id, "AVAILABLE") for c in reversed(issued[1:])] + [
        (issued[0].user_coupon_id, "EXPIRED")
    ]
    with pytest.raises(UserNotFoundError):
        await user_coupons(deps.single, deps.users, UserCoupons(UNKNOWN, True, None, 2, NOW))


async def _owned(db: FakeDatabase, deps, minimum: int = 0) -> int:  # type: ignore[no-untyped-def]
    db.known[1] = ("u1", NOW)
    coupon = await create_coupon(deps.coupons, CreateCoupon(_terms(1, min_order_amount=minimum)))
    return (await _issue(deps, coupon, 1)).user_coupon_id


async def test_saga_reserve_confirm_and_redelivery() -> None:
    db, _, deps = _setup()
    uc = await _owned(db, deps)
    order = str(uuid.uuid4())
    reserve = ReserveCoupon(order_id=order, user_id=1, user_coupon_id=uc, order_amount=2000)
    reply = await answer(FakeUnitOfWork(db), reserve, NOW)
    assert isinstance(reply, CouponReserved) and (reply.discount_amount, reply.command_id) == (1000, reserve.event_id)
    resent = ReserveCoupon(order_id=order, user_id=1, user_coupon_id=uc, order_amount=2000)
    again = await answer(FakeUnitOfWork(db), resent, NOW)
    assert isinstance(again, CouponReserved) and again.command_id == resent.event_id
    assert db.copies[uc].status == "USED" and db.copies[uc].used_at == NOW
    other = ReserveCoupon(order_id=str(uuid.uuid4()), user_id=1, user_coupon_id=uc, order_amount=2000)
    refused = await answer(FakeUnitOfWork(db), other, NOW)
    assert isinstance(refused, CouponReservationFailed) and refused.code == "COUPON_UNAVAILABLE"
    assert isinstance(await answer(FakeUnitOfWork(db), ConfirmCoupon(order_id=order), NOW), CouponConfirmed)
    assert db.orders[order].state == "CONFIRMED"
    assert isinstance(await answer(FakeUnitOfWork(db), ReleaseCoupon(order_id=order), NOW), CouponReleased)
    assert db.copies[uc].status == "USED"  # a confirmed order keeps its coupon


async def test_saga_release_gives_back_and_fences() -> None:
    db, _, deps = _setup()
    uc = await _owned(db, deps, minimum=5000)
    order, never = str(uuid.uuid4()), str(uuid.uuid4())
    low = await answer(
        FakeUnitOfWork(db), ReserveCoupon(order_id=order, user_id=1, user_coupon_id=uc, order_amount=4999), NOW
    )
    assert isinstance(low, CouponReservationFailed) and low.code == "COUPON_UNAVAILABLE"
    order = str(uuid.uuid4())
    await answer(
        FakeUnitOfWork(db), ReserveCoupon(order_id=order, user_id=1, user_coupon_id=uc, order_amount=5000), NOW
    )
    await answer(FakeUnitOfWork(db), ReleaseCoupon(order_id=order), NOW)
    assert (db.copies[uc].status, db.copies[uc].used_at) == ("AVAILABLE", None)
    await answer(FakeUnitOfWork(db), ReleaseCoupon(order_id=never), NOW)
    late = await answer(
        FakeUnitOfWork(db), ReserveCoupon(order_id=never, user_id=1, user_coupon_id=uc, order_amount=9000), NOW
    )
    assert isinstance(late, CouponReservationFailed) and late.code == "ALREADY_COMPENSATED"
    assert db.copies[uc].status == "AVAILABLE"
    assert await answer(FakeUnitOfWork(db), CouponReleased(order_id=never, command_id=uuid.uuid4()), NOW) is None


async def test_a_record_race_applies_the_batch_again_and_other_failures_go_up() -> None:
    calls = []

    async def racing() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RecordRacedError("o")

    await saga.retry_record_race(racing, deps_raced := fake_deps().record_raced)
    assert len(calls) == 2

    async def broken() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError):
        await saga.retry_record_race(broken, deps_raced)

    async def always() -> None:
        raise RecordRacedError("o")

    with pytest.raises(RecordRacedError):
        await saga.retry_record_race(always, deps_raced)
