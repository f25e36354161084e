"""One suite for every adapter of the repository ports: the PostgreSQL repositories
(``coupon_service.db``) and the in-memory fakes (``tests/coupon_service/fakes.py``) must answer
alike, so handler tests on fakes say something about the real service."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
import pytest_asyncio

from coupon_service.app import MIGRATIONS
from coupon_service.db.saga import record_raced
from coupon_service.db.unit_of_work import CouponSingleStatement, CouponUnitOfWork
from coupon_service.domain.errors import CouponAlreadyIssuedError
from coupon_service.domain.model import Coupon, CouponTerms, DiscountType
from coupon_service.domain.saga import OrderCoupon, OrderCouponState
from coupon_service.service.ports import UnitOfWork
from shared.db.migrations import migrate
from shared.db.pool import close_pool, create_pool
from tests.coupon_service import fakes


class Adapters:
    """The two unit-of-work factories of one adapter, and its test of a record race."""

    def __init__(
        self, uow: Callable[[], UnitOfWork], single: Callable[[], UnitOfWork], raced: Callable[[BaseException], bool]
    ) -> None:
        self.uow = uow
        self.single = single
        self.raced = raced


def _terms(quantity: int = 3, **kw: object) -> CouponTerms:
    values: dict = {
        "name": "c",
        "discount_type": DiscountType.FIXED,
        "discount_value": 1000,
        "total_quantity": quantity,
        "valid_days": 7,
        "min_order_amount": 0,
        **kw,
    }
    return CouponTerms(**values)


def _user() -> int:
    return uuid.uuid4().int % 10**12 + 1


async def _coupon(a: Adapters, quantity: int = 3, **kw: object) -> Coupon:
    async with a.uow() as uow:
        coupon = await uow.coupons.add(_terms(quantity, **kw))
        await uow.commit()
    return coupon


async def _known(a: Adapters, *user_ids: int) -> None:
    async with a.single() as uow:
        await uow.users.add([(u, f"u{u}", datetime(2026, 1, 1, tzinfo=UTC)) for u in user_ids])


class RepositoryContract:
    """Run by a subclass that provides the ``adapters`` fixture."""

    async def test_a_coupon_is_stored_with_its_terms_and_no_copy_issued(self, adapters: Adapters) -> None:
        starts = datetime(2026, 1, 1, tzinfo=UTC)
        coupon = await _coupon(adapters, 4, issue_starts_at=starts, min_order_amount=500)
        async with adapters.single() as uow:
            assert await uow.coupons.get(coupon.coupon_id) == coupon
            assert await uow.coupons.issued_count(coupon.coupon_id) == 0
            assert await uow.coupons.get(10**15) is None
        assert coupon.terms == _terms(4, issue_starts_at=starts, min_order_amount=500)

    async def test_claims_issue_each_user_one_copy_until_none_is_free(self, adapters: Adapters) -> None:
        coupon = await _coupon(adapters, 2)
        cid = coupon.coupon_id
        first, second, third = _user(), _user(), _user()
        async with adapters.single() as uow:
            issued = await uow.coupons.claim(cid, first, 7, wait=False)
            assert issued is not None
            assert (issued.coupon_id, issued.user_id, issued.status) == (cid, first, "AVAILABLE")
            assert issued.expires_at - issued.issued_at == timedelta(days=7)
            assert await uow.coupons.holds(cid, first) and not await uow.coupons.holds(cid, second)
            with pytest.raises(CouponAlreadyIssuedError):
                await uow.coupons.claim(cid, first, 7, wait=True)
            assert await uow.coupons.claim(cid, second, 7, wait=True) is not None
            assert await uow.coupons.claim(cid, third, 7, wait=False) is None
            assert await uow.coupons.claim(cid, third, 7, wait=True) is None
            assert await uow.coupons.claim(cid, first, 7, wait=True) is None  # none free: not "already"
            assert await uow.coupons.issued_count(cid) == 2

    async def test_issue_many_pairs_fresh_known_users_with_free_copies_in_arrival_order(
        self, adapters: Adapters
    ) -> None:
        coupon = await _coupon(adapters, 3)
        cid = coupon.coupon_id
        holder, a, unknown, b, c = _user(), _user(), _user(), _user(), _user()
        await _known(adapters, holder, a, b, c)
        async with adapters.single() as uow:
            assert await uow.coupons.claim(cid, holder, 7, wait=False) is not None
            claimants = await uow.coupons.issue_many(cid, [holder, a, unknown, b, c], 7)
        assert claimants is not None
        by_user = {x.user_id: x for x in claimants}
        assert set(by_user) == {holder, a, unknown, b, c}
        assert (by_user[holder].known, by_user[holder].held, by_user[holder].copy) == (True, True, None)
        assert (by_user[unknown].known, by_user[unknown].copy) == (False, None)
        got = [u for u in (a, b, c) if by_user[u].copy is not None]
        assert got == [a, b]  # two copies left: first come, first served
        copy = by_user[a].copy
        assert copy is not None and (copy.coupon_id, copy.user_id, copy.status) == (cid, a, "AVAILABLE")
        assert not by_user[c].more_free  # every copy is taken for good
        async with adapters.single() as uow:
            assert await uow.coupons.issued_count(cid) == 3

    async def test_issue_many_says_when_free_copies_are_left(self, adapters: Adapters) -> None:
        coupon = await _coupon(adapters, 3)
        user = _user()
        await _known(adapters, user)
        async with adapters.single() as uow:
            claimants = await uow.coupons.issue_many(coupon.coupon_id, [user], 7)
        assert claimants is not None and claimants[0].copy is not None and claimants[0].more_free

    async def test_who_holds(self, adapters: Adapters) -> None:
        coupon = await _coupon(adapters, 1)
        holder, other, unknown = _user(), _user(), _user()
        await _known(adapters, holder, other)
        async with adapters.single() as uow:
            await uow.coupons.claim(coupon.coupon_id, holder, 7, wait=False)
            claimants = await uow.coupons.who_holds(coupon.coupon_id, [holder, other, unknown])
        seen = {x.user_id: (x.known, x.held) for x in claimants}
        assert seen == {holder: (True, True), other: (True, False), unknown: (False, False)}

    async def test_known_users(self, adapters: Adapters) -> None:
        user = _user()
        async with adapters.single() as uow:
            assert not await uow.users.is_known(user)
            await uow.users.add([])
            await uow.users.add([(user, "kim", datetime(2026, 1, 1, tzinfo=UTC))])
            await uow.users.add([(user, "lee", datetime(2026, 1, 2, tzinfo=UTC))])  # left as it is
            assert await uow.users.is_known(user)

    async def test_owned_coupons_newest_first_by_keyset_pages(self, adapters: Adapters) -> None:
        user = _user()
        ids = []
        for n in range(3):
            coupon = await _coupon(adapters, 1, name=f"c{n}")
            async with adapters.single() as uow:
                issued = await uow.coupons.claim(coupon.coupon_id, user, 7, wait=False)
            assert issued is not None
            ids.append(issued.user_coupon_id)
        async with adapters.single() as uow:
            everything = await uow.user_coupons.list_owned(user, usable_only=False, after=None, limit=10)
            assert [o.user_coupon_id for o in everything] == list(reversed(ids))
            newest = everything[0]
            assert (newest.name, newest.discount_type, newest.discount_value) == ("c2", "FIXED", 1000)
            assert (newest.status, newest.used_at) == ("AVAILABLE", None)
            after = (everything[0].issued_at, everything[0].user_coupon_id)
            page = await uow.user_coupons.list_owned(user, usable_only=False, after=after, limit=1)
            assert [o.user_coupon_id for o in page] == [ids[1]]
            assert await uow.orders.mark_taken(ids[0], "o-" + uuid.uuid4().hex, datetime.now(UTC))
            usable = await uow.user_coupons.list_owned(user, usable_only=True, after=None, limit=10)
            assert [o.user_coupon_id for o in usable] == [ids[2], ids[1]]

    async def test_order_records_are_inserted_once_and_change_state(self, adapters: Adapters) -> None:
        order = str(uuid.uuid4())
        record = OrderCoupon(order, OrderCouponState.RESERVED, 5, 3000)
        async with adapters.uow() as uow:
            assert await uow.orders.lock_record(order) is None
            await uow.orders.insert_record(record)
            assert await uow.orders.lock_record(order) == record
            await uow.orders.update_state(OrderCoupon(order, OrderCouponState.RELEASED, 5, 3000))
            assert await uow.orders.lock_record(order) == OrderCoupon(order, OrderCouponState.RELEASED, 5, 3000)
            await uow.commit()
        refused = OrderCoupon(str(uuid.uuid4()), OrderCouponState.REFUSED, None, None, "COUPON_UNAVAILABLE", "no")
        async with adapters.uow() as uow:
            await uow.orders.insert_record(refused)
            assert await uow.orders.lock_record(refused.order_id) == refused
            await uow.commit()
        async with adapters.uow() as uow:
            with pytest.raises(Exception) as failure:
                await uow.orders.insert_record(OrderCoupon(order, OrderCouponState.FENCED))
            assert adapters.raced(failure.value)

    async def test_a_holding_is_taken_used_and_given_back_only_by_its_order(self, adapters: Adapters) -> None:
        coupon = await _coupon(adapters, 1, min_order_amount=100)
        user, order, other = _user(), str(uuid.uuid4()), str(uuid.uuid4())
        now = datetime.now(UTC)
        async with adapters.single() as uow:
            issued = await uow.coupons.claim(coupon.coupon_id, user, 7, wait=False)
        assert issued is not None
        uc = issued.user_coupon_id
        async with adapters.uow() as uow:
            assert await uow.orders.lock_holding(10**15) is None
            holding = await uow.orders.lock_holding(uc)
            assert holding is not None
            assert (holding.user_coupon_id, holding.user_id, holding.status) == (uc, user, "AVAILABLE")
            assert holding.expires_at == issued.expires_at and holding.terms == coupon.terms
            assert await uow.orders.mark_taken(uc, order, now)
            assert not await uow.orders.mark_taken(uc, other, now)  # one coupon, one order
            await uow.orders.mark_available(uc, other)  # not the order that took it: no change
            taken = await uow.orders.lock_holding(uc)
            assert taken is not None and taken.status == "USED"
            await uow.orders.mark_used(uc, order, now)  # only a RESERVED coupon: no change
            await uow.orders.mark_available(uc, order)
            back = await uow.orders.lock_holding(uc)
            assert back is not None and back.status == "AVAILABLE"
            await uow.commit()
        async with adapters.single() as uow:
            page = await uow.user_coupons.list_owned(user, usable_only=False, after=None, limit=5)
        assert [(o.status, o.used_at) for o in page] == [("AVAILABLE", None)]


class TestFakeRepositories(RepositoryContract):
    pytestmark = pytest.mark.asyncio

    @pytest.fixture
    def adapters(self) -> Adapters:
        db = fakes.FakeDatabase()
        return Adapters(
            lambda: fakes.FakeCouponUnitOfWork(db), lambda: fakes.FakeSingleStatement(db), fakes.record_raced
        )


@pytest_asyncio.fixture(scope="module")
async def coupon_pool(new_database) -> AsyncIterator[object]:
    dsn = await new_database("coupon_repos")
    await migrate(dsn, MIGRATIONS)
    pool = await create_pool(dsn, 1, 4)
    try:
        yield pool
    finally:
        await close_pool(pool)


class TestPostgresRepositories(RepositoryContract):
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.integration, pytest.mark.asyncio]

    @pytest.fixture
    def adapters(self, coupon_pool) -> Adapters:
        return Adapters(lambda: CouponUnitOfWork(coupon_pool), lambda: CouponSingleStatement(coupon_pool), record_raced)
