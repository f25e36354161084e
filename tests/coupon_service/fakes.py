"""In-memory adapters of coupon_service's ports (``coupon_service.service.ports``).

They answer as the PostgreSQL repositories do (``tests/coupon_service/test_repositories.py`` runs
one suite against both), so handler tests need no server. The platform's fake database
(``tests/support/fakes.py``) holds coupon_service's tables (:class:`CouponTables`) with its inbox
and outbox: :class:`FakeCouponUnitOfWork` works on a copy swapped in on commit (all or nothing,
as a transaction), :class:`FakeSingleStatement` on the committed tables (each statement commits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from coupon_service.bootstrap import Deps
from coupon_service.domain.errors import CouponAlreadyIssuedError, UserDirectoryUnavailableError
from coupon_service.domain.model import Claimant, Coupon, CouponTerms, IssuedCoupon, OwnedCoupon, UserCouponStatus
from coupon_service.domain.saga import Holding, OrderCoupon
from coupon_service.service.coupons import Coupons
from coupon_service.service.issuing import Issuer
from shared.known_users import KnownUsers
from shared.messaging.envelope import Message, Outgoing
from shared.messaging.topics import Topics
from tests.support.fakes import FakeDatabase as PlatformDatabase
from tests.support.fakes import FakeInbox, FakeKnownUsers, FakeState, FakeUnitOfWork, FakeUserDirectory


@dataclass
class Copy:
    """A row of ``user_coupons``: a copy of a coupon, free while ``user_id`` is ``None``."""

    user_coupon_id: int
    coupon_id: int
    slot_no: int
    user_id: int | None = None
    status: str = UserCouponStatus.AVAILABLE.value
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    used_at: datetime | None = None
    reserved_order_id: str | None = None


class RecordRacedError(Exception):
    """What the fake raises where PostgreSQL fails on ``order_coupons_pkey``."""


def record_raced(exc: BaseException) -> bool:
    return isinstance(exc, RecordRacedError)


@dataclass
class CouponTables:
    """coupon_service's own tables: ``coupons``, ``user_coupons`` (copies), ``order_coupons`` (the
    ``known_users`` table is the shared fake's, :class:`tests.support.fakes.FakeKnownUsers`)."""

    coupons: dict[int, Coupon] = field(default_factory=dict)
    copies: dict[int, Copy] = field(default_factory=dict)
    orders: dict[str, OrderCoupon] = field(default_factory=dict)
    statements: int = 0
    _ids: dict[str, int] = field(default_factory=dict)

    def next_id(self, sequence: str) -> int:
        self._ids[sequence] = self._ids.get(sequence, 0) + 1
        return self._ids[sequence]

    def of_coupon(self, coupon_id: int) -> list[Copy]:
        return sorted((c for c in self.copies.values() if c.coupon_id == coupon_id), key=lambda c: c.slot_no)

    def holds(self, coupon_id: int, user_id: int) -> bool:
        return any(c.user_id == user_id for c in self.of_coupon(coupon_id))


def _now() -> datetime:
    return datetime.now(UTC)


class _Repository:
    def __init__(self, db: CouponTables, known: dict[int, tuple[str, Any]] | None = None) -> None:
        self._db = db
        self._known = known if known is not None else {}

    def _statement(self) -> None:
        self._db.statements += 1


class FakeCoupons(_Repository):
    async def add(self, terms: CouponTerms) -> Coupon:
        self._statement()
        self._statement()
        coupon = Coupon(self._db.next_id("coupons"), terms, _now())
        self._db.coupons[coupon.coupon_id] = coupon
        for slot in range(1, terms.total_quantity + 1):
            copy = Copy(self._db.next_id("user_coupons"), coupon.coupon_id, slot)
            self._db.copies[copy.user_coupon_id] = copy
        return coupon

    async def get(self, coupon_id: int) -> Coupon | None:
        self._statement()
        return self._db.coupons.get(coupon_id)

    async def issued_count(self, coupon_id: int) -> int:
        self._statement()
        return sum(1 for c in self._db.of_coupon(coupon_id) if c.user_id is not None)

    def _give(self, copy: Copy, user_id: int, valid_days: int) -> IssuedCoupon:
        now = _now()
        copy.user_id, copy.issued_at, copy.expires_at = user_id, now, now + timedelta(days=valid_days)
        return IssuedCoupon(copy.user_coupon_id, copy.coupon_id, user_id, copy.status, now, copy.expires_at)

    async def claim(self, coupon_id: int, user_id: int, valid_days: int, *, wait: bool) -> IssuedCoupon | None:
        self._statement()
        free = [c for c in self._db.of_coupon(coupon_id) if c.user_id is None]
        if not free:
            return None
        if self._db.holds(coupon_id, user_id):
            raise CouponAlreadyIssuedError(f"user {user_id} already holds coupon {coupon_id}")
        return self._give(free[0], user_id, valid_days)

    async def holds(self, coupon_id: int, user_id: int) -> bool:
        self._statement()
        return self._db.holds(coupon_id, user_id)

    async def issue_many(self, coupon_id: int, user_ids: list[int], valid_days: int) -> list[Claimant] | None:
        self._statement()
        seen = [(u, u in self._known, self._db.holds(coupon_id, u)) for u in user_ids]
        free = iter([c for c in self._db.of_coupon(coupon_id) if c.user_id is None])
        given: dict[int, IssuedCoupon] = {}
        for user_id, known, held in seen:
            if known and not held:
                copy = next(free, None)
                if copy is None:
                    break
                given[user_id] = self._give(copy, user_id, valid_days)
        more_free = next(free, None) is not None
        return [Claimant(u, known, held, given.get(u), more_free) for u, known, held in seen]

    async def who_holds(self, coupon_id: int, user_ids: list[int]) -> list[Claimant]:
        self._statement()
        return [Claimant(u, u in self._known, self._db.holds(coupon_id, u)) for u in user_ids]


class FakeUserCoupons(_Repository):
    async def list_owned(
        self, user_id: int, *, usable_only: bool, after: tuple[datetime, int] | None, limit: int
    ) -> list[OwnedCoupon]:
        self._statement()
        now = _now()
        rows = []
        for c in self._db.copies.values():
            if c.user_id != user_id or c.issued_at is None or c.expires_at is None:
                continue
            if usable_only and not (c.status == UserCouponStatus.AVAILABLE and c.expires_at > now):
                continue
            if after is not None and (c.issued_at, c.user_coupon_id) >= after:
                continue
            t = self._db.coupons[c.coupon_id].terms
            rows.append(
                OwnedCoupon(
                    c.user_coupon_id,
                    c.coupon_id,
                    t.name,
                    t.discount_type.value,
                    t.discount_value,
                    c.status,
                    c.issued_at,
                    c.expires_at,
                    c.used_at,
                )
            )
        rows.sort(key=lambda r: (r.issued_at, r.user_coupon_id), reverse=True)
        return rows[:limit]


class FakeOrderCoupons(_Repository):
    async def lock_record(self, order_id: str) -> OrderCoupon | None:
        self._statement()
        return self._db.orders.get(order_id)

    async def insert_record(self, record: OrderCoupon) -> None:
        self._statement()
        if record.order_id in self._db.orders:
            raise RecordRacedError(record.order_id)
        self._db.orders[record.order_id] = record

    async def update_state(self, record: OrderCoupon) -> None:
        self._statement()
        stored = self._db.orders.get(record.order_id)
        if stored is not None:
            self._db.orders[record.order_id] = OrderCoupon(
                stored.order_id,
                record.state,
                stored.user_coupon_id,
                stored.discount_amount,
                stored.failure_code,
                stored.failure_reason,
            )

    async def lock_holding(self, user_coupon_id: int) -> Holding | None:
        self._statement()
        c = self._db.copies.get(user_coupon_id)
        if c is None:
            return None
        return Holding(c.user_coupon_id, c.user_id, c.status, c.expires_at, self._db.coupons[c.coupon_id].terms)

    async def mark_taken(self, user_coupon_id: int, order_id: str, now: datetime) -> bool:
        self._statement()
        c = self._db.copies.get(user_coupon_id)
        if c is None or c.status != UserCouponStatus.AVAILABLE:
            return False
        c.status, c.used_at, c.reserved_order_id = UserCouponStatus.USED.value, now, order_id
        return True

    async def mark_used(self, user_coupon_id: int, order_id: str, now: datetime) -> None:
        self._statement()
        c = self._db.copies.get(user_coupon_id)
        if c is not None and c.status == UserCouponStatus.RESERVED and c.reserved_order_id == order_id:
            c.status, c.used_at = UserCouponStatus.USED.value, now

    async def mark_available(self, user_coupon_id: int, order_id: str) -> None:
        self._statement()
        c = self._db.copies.get(user_coupon_id)
        if c is not None and c.status in ("RESERVED", "USED") and c.reserved_order_id == order_id:
            c.status, c.reserved_order_id, c.used_at = UserCouponStatus.AVAILABLE.value, None, None


def known_users(state: FakeState) -> dict[int, tuple[str, Any]]:
    rows: dict[int, tuple[str, Any]] = state.tables.setdefault("known_users", {})
    return rows


def tables(state: FakeState) -> CouponTables:
    found = state.tables.setdefault("coupon", CouponTables())
    assert isinstance(found, CouponTables)
    return found


class FakeDatabase(PlatformDatabase):
    """The platform's fake database with coupon_service's committed tables at hand."""

    @property
    def t(self) -> CouponTables:
        return tables(self.state)

    @property
    def known(self) -> dict[int, tuple[str, Any]]:
        """The committed ``known_users`` rows (the shared fake's table)."""
        return known_users(self.state)

    @property
    def outbox(self) -> list[Outgoing]:
        return self.state.outbox


class _Bound:
    coupons: FakeCoupons
    user_coupons: FakeUserCoupons
    orders: FakeOrderCoupons
    users: FakeKnownUsers

    def _bind(self, state: FakeState) -> None:
        db = tables(state)
        self.coupons = FakeCoupons(db, known_users(state))
        self.user_coupons = FakeUserCoupons(db)
        self.orders = FakeOrderCoupons(db)
        self.users = FakeKnownUsers(state)


class FakeCouponUnitOfWork(_Bound, FakeUnitOfWork[None]):
    """A transaction: the repositories on a copy of the tables, swapped in on commit."""

    def bind(self, state: FakeState) -> None:
        self._bind(state)


class FakeSingleStatement(_Bound):
    """No transaction: the repositories on the committed tables; ``commit`` does nothing."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.inbox = FakeInbox(set())

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        raise RuntimeError("a single-statement unit of work has no outbox")

    async def commit(self) -> None:
        """Nothing to do: each statement committed when it ran."""

    async def __aenter__(self) -> Self:
        self._bind(self.db.state)
        self.inbox = FakeInbox(self.db.state.inbox)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def fake_deps(db: FakeDatabase | None = None, directory: FakeUserDirectory | None = None, **issuer: Any) -> Deps:
    """``bootstrap``'s Deps over the fakes."""
    db = db if db is not None else FakeDatabase()
    directory = directory if directory is not None else FakeUserDirectory(error=UserDirectoryUnavailableError)

    def uow() -> FakeCouponUnitOfWork:
        return FakeCouponUnitOfWork(db)

    def single() -> FakeSingleStatement:
        return FakeSingleStatement(db)

    users = KnownUsers(single, directory)
    coupons = Coupons(uow, single, users)
    return Deps(
        uow=uow,
        single=single,
        record_raced=record_raced,
        users=users,
        coupons=coupons,
        issuer=Issuer(coupons, **issuer),
        topics=Topics(""),
        clock=_now,
    )
