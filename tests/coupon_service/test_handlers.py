"""The service handlers on the fakes (no IO): the outcomes of each use case, in the contract's order."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from coupon_service.domain.commands import CreateCoupon, GetCoupon, IssueCoupon, UserCoupons
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
from coupon_service.domain.saga import OrderCoupon
from coupon_service.messaging.consumers import SAGA_GROUP, answer, saga_handler, users_handler
from coupon_service.service.coupons import create_coupon, get_coupon, issue_alone
from coupon_service.service.issuing import issue_coupon
from coupon_service.service.user_coupons import user_coupons
from coupon_service.service.users import require_user
from shared.events.saga import (
    ConfirmCoupon,
    CouponConfirmed,
    CouponReleased,
    CouponReservationFailed,
    CouponReserved,
    ReleaseCoupon,
    ReserveCoupon,
    SagaReply,
)
from shared.events.users import UserRegistered
from shared.messaging.envelope import Incoming, Message
from tests.coupon_service.fakes import (
    FakeCouponUnitOfWork,
    FakeDatabase,
    FakeOrderCoupons,
    RecordRacedError,
    fake_deps,
)
from tests.support.fakes import FakeUserDirectory

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
    names = {user_id: (name, NOW) for user_id, name in (users or {}).items()}
    directory = FakeUserDirectory(names, error=UserDirectoryUnavailableError)
    return db, directory, fake_deps(db, directory)


async def _issue(deps, coupon: Coupon, user_id: int, now: datetime = NOW):  # type: ignore[no-untyped-def]
    return await issue_coupon(deps.issuer, IssueCoupon(coupon.coupon_id, user_id, now))


async def test_create_validates_and_get_counts_issued_copies() -> None:
    db, _, deps = _setup(1)
    with pytest.raises(InvalidCouponError):
        await create_coupon(deps.coupons, CreateCoupon(_terms(discount_type=DiscountType.RATE, discount_value=101)))
    assert not db.t.coupons
    coupon = await create_coupon(deps.coupons, CreateCoupon(_terms(2)))
    assert await get_coupon(deps.coupons, GetCoupon(coupon.coupon_id)) == (coupon, 0)
    await _issue(deps, coupon, 1)
    assert await get_coupon(deps.coupons, GetCoupon(coupon.coupon_id)) == (coupon, 1)
    with pytest.raises(CouponNotFoundError):
        await get_coupon(deps.coupons, GetCoupon(10**9))


async def test_a_remembered_coupon_costs_no_statement() -> None:
    db, _, deps = _setup()
    coupon = await create_coupon(deps.coupons, CreateCoupon(_terms()))
    before = db.t.statements
    assert await deps.coupons.find(coupon.coupon_id) == coupon
    assert db.t.statements == before


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
    assert not directory.asked  # the projection answered
    assert deps.coupons.is_sold_out(coupon.coupon_id)


async def test_unknown_users_in_a_batch_go_alone_and_are_asked_about() -> None:
    _, directory, deps = _setup(1, 2, users={3: "lee"})
    coupon = await create_coupon(deps.coupons, CreateCoupon(_terms(10)))
    alone = deps.issuer.alone
    outcomes = await asyncio.gather(*(_issue(deps, coupon, u) for u in (1, 2, 3, UNKNOWN)), return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["IssuedCoupon"] * 3 + ["UserNotFoundError"]
    assert deps.issuer.alone - alone == 2
    assert sorted(directory.asked) == [3, UNKNOWN]


async def test_known_users_ask_balance_once_and_say_when_it_cannot_answer() -> None:
    db, directory, deps = _setup(users={7: "kim"})
    await require_user(deps.users, 7)
    await require_user(deps.users, 7)
    assert directory.asked == [7] and 7 in db.known
    directory.down = True
    with pytest.raises(UserDirectoryUnavailableError):
        await require_user(deps.users, 8)
    with pytest.raises(UserDirectoryUnavailableError):
        await require_user(deps.users, UNKNOWN)  # 404 only when balance says so, never when it is down
    directory.down = False
    with pytest.raises(UserNotFoundError):
        await require_user(deps.users, UNKNOWN)
    db.known[9] = ("park", NOW)  # projected
    await require_user(deps.users, 9)  # projected: balance is not asked
    assert directory.asked == [7, 8, UNKNOWN, UNKNOWN]


async def test_user_coupons_pages_and_derives_expired() -> None:
    db, _, deps = _setup(1)
    issued = []
    for _ in range(3):
        coupon = await create_coupon(deps.coupons, CreateCoupon(_terms(1)))
        issued.append(await _issue(deps, coupon, 1))
    db.t.copies[issued[0].user_coupon_id].expires_at = NOW - timedelta(days=1)
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


async def _answer(db: FakeDatabase, message: Message) -> SagaReply | None:
    async with FakeCouponUnitOfWork(db) as uow:
        reply = await answer(uow, message, NOW)
        await uow.commit()
    return reply


async def _owned(db: FakeDatabase, deps, minimum: int = 0) -> int:  # type: ignore[no-untyped-def]
    db.known[1] = ("u1", NOW)
    coupon = await create_coupon(deps.coupons, CreateCoupon(_terms(1, min_order_amount=minimum)))
    return (await _issue(deps, coupon, 1)).user_coupon_id


async def test_saga_reserve_confirm_and_redelivery() -> None:
    db, _, deps = _setup()
    uc = await _owned(db, deps)
    order = str(uuid.uuid4())
    reserve = ReserveCoupon(order_id=order, user_id=1, user_coupon_id=uc, order_amount=2000)
    reply = await _answer(db, reserve)
    assert isinstance(reply, CouponReserved) and (reply.discount_amount, reply.command_id) == (1000, reserve.event_id)
    resent = ReserveCoupon(order_id=order, user_id=1, user_coupon_id=uc, order_amount=2000)
    again = await _answer(db, resent)
    assert isinstance(again, CouponReserved) and again.command_id == resent.event_id
    assert db.t.copies[uc].status == "USED" and db.t.copies[uc].used_at == NOW
    other = ReserveCoupon(order_id=str(uuid.uuid4()), user_id=1, user_coupon_id=uc, order_amount=2000)
    refused = await _answer(db, other)
    assert isinstance(refused, CouponReservationFailed) and refused.code == "COUPON_UNAVAILABLE"
    assert isinstance(await _answer(db, ConfirmCoupon(order_id=order)), CouponConfirmed)
    assert db.t.orders[order].state == "CONFIRMED"
    assert isinstance(await _answer(db, ReleaseCoupon(order_id=order)), CouponReleased)
    assert db.t.copies[uc].status == "USED"  # a confirmed order keeps its coupon


async def test_saga_release_gives_back_and_fences() -> None:
    db, _, deps = _setup()
    uc = await _owned(db, deps, minimum=5000)
    order, never = str(uuid.uuid4()), str(uuid.uuid4())
    low = await _answer(db, ReserveCoupon(order_id=order, user_id=1, user_coupon_id=uc, order_amount=4999))
    assert isinstance(low, CouponReservationFailed) and low.code == "COUPON_UNAVAILABLE"
    order = str(uuid.uuid4())
    await _answer(db, ReserveCoupon(order_id=order, user_id=1, user_coupon_id=uc, order_amount=5000))
    await _answer(db, ReleaseCoupon(order_id=order))
    assert (db.t.copies[uc].status, db.t.copies[uc].used_at) == ("AVAILABLE", None)
    await _answer(db, ReleaseCoupon(order_id=never))
    late = await _answer(db, ReserveCoupon(order_id=never, user_id=1, user_coupon_id=uc, order_amount=9000))
    assert isinstance(late, CouponReservationFailed) and late.code == "ALREADY_COMPENSATED"
    assert db.t.copies[uc].status == "AVAILABLE"
    assert await _answer(db, CouponReleased(order_id=never, command_id=uuid.uuid4())) is None


def _incoming(message: Message, offset: int = 0) -> Incoming:
    return Incoming("saga.coupon.commands", 0, offset, None, message)


async def test_the_saga_consumer_applies_each_command_once_and_replies_in_the_transaction() -> None:
    db, _, deps = _setup()
    uc = await _owned(db, deps)
    order = str(uuid.uuid4())
    reserve = ReserveCoupon(order_id=order, user_id=1, user_coupon_id=uc, order_amount=2000)
    handle = saga_handler(deps)
    await handle(
        [
            _incoming(reserve),
            _incoming(reserve, 1),
            _incoming(CouponReleased(order_id=order, command_id=uuid.uuid4()), 2),
        ]
    )
    await handle([_incoming(reserve, 3)])  # redelivered: the inbox drops it
    replies = [o.message for o in db.outbox]
    assert [type(r) for r in replies] == [CouponReserved] and replies[0].command_id == reserve.event_id
    assert db.outbox[0].topic == "saga.replies" and db.outbox[0].key == order
    assert reserve.event_id in db.claimed(SAGA_GROUP)


async def test_a_record_race_runs_the_transaction_again_and_other_failures_go_up() -> None:
    db, _, deps = _setup()
    uc = await _owned(db, deps)
    order = str(uuid.uuid4())
    reserve = ReserveCoupon(order_id=order, user_id=1, user_coupon_id=uc, order_amount=2000)
    inserts = 0
    original = FakeOrderCoupons.insert_record

    async def racing(self: FakeOrderCoupons, record: OrderCoupon) -> None:
        nonlocal inserts
        inserts += 1
        if inserts == 1:  # another instance recorded the order after we read: this transaction fails
            raise RecordRacedError(record.order_id)
        await original(self, record)

    FakeOrderCoupons.insert_record = racing  # type: ignore[method-assign]
    try:
        await saga_handler(deps)([_incoming(reserve)])
    finally:
        FakeOrderCoupons.insert_record = original  # type: ignore[method-assign]
    assert inserts == 2 and [type(o.message) for o in db.outbox] == [CouponReserved]
    assert db.t.orders[order].state == "RESERVED"

    FakeOrderCoupons.insert_record = lambda self, record: (_ for _ in ()).throw(ValueError("no"))  # type: ignore[method-assign,assignment]
    try:
        with pytest.raises(ValueError):
            await saga_handler(deps)([_incoming(ReleaseCoupon(order_id=str(uuid.uuid4())))])
    finally:
        FakeOrderCoupons.insert_record = original  # type: ignore[method-assign]


async def test_user_registered_is_projected_once() -> None:
    db, directory, deps = _setup()
    event = UserRegistered(user_id=5, name="kim", created_at=NOW)
    handle = users_handler(deps)
    await handle([_incoming(event), _incoming(event, 1)])
    assert db.known == {5: ("kim", NOW)}
    await require_user(deps.users, 5)
    assert not directory.asked
