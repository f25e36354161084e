"""In-memory adapters of ``balance_service.service.ports``: repositories over plain dicts and a unit
of work that restores them unless committed. They pass the same suite as the PostgreSQL ones
(``test_repositories.py``), so handler tests that use them (``test_handlers.py``) need no IO."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from balance_service.domain.errors import PaymentRecordRacedError
from balance_service.domain.model import Balance, ChargeResult, HistoryRecord, StoredKey, User
from balance_service.domain.payments import Payment, Settlement
from shared.context import current_request_id
from shared.messaging.envelope import Message, Outgoing
from tests.support.fakes import FakeInbox


@dataclass
class _Row:
    balance: int
    held: int
    updated_at: datetime


@dataclass
class FakeState:
    """Everything the database would hold."""

    users: dict[int, User] = field(default_factory=dict)
    balances: dict[int, _Row] = field(default_factory=dict)
    history: list[tuple[int, HistoryRecord]] = field(default_factory=list)
    keys: dict[tuple[int, str], tuple[StoredKey, datetime]] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    inbox: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    outbox: list[Outgoing] = field(default_factory=list)
    next_user: int = 1
    next_entry: int = 1


class FakeDatabase:
    """The state and a clock (``advance`` moves it on) shared by the units of work."""

    def __init__(self) -> None:
        self.state = FakeState()
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.commits = 0

    def tick(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class _Repository:
    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow
        self._db = uow.db

    @property
    def _s(self) -> FakeState:
        return self._uow.state


class FakeUsers(_Repository):
    async def add(self, name: str) -> User:
        s = self._s
        user = User(s.next_user, name, self._db.tick())
        s.next_user += 1
        s.users[user.user_id] = user
        s.balances[user.user_id] = _Row(0, 0, user.created_at)
        return user

    async def get(self, user_id: int) -> User | None:
        return self._s.users.get(user_id)


class FakeBalances(_Repository):
    def _history(self, user_id: int, type_: str, amount: int, after: int, order_id: str | None = None) -> None:
        s = self._s
        s.history.append((user_id, HistoryRecord(s.next_entry, type_, amount, after, order_id, self._db.now)))
        s.next_entry += 1

    async def charge(self, user_id: int, amount: int, limit: int) -> ChargeResult:
        row = self._s.balances.get(user_id)
        if row is None:
            return None, None, None
        before = row.balance
        if before + row.held + amount > limit:
            return before, None, row.held
        row.balance += amount
        row.updated_at = self._db.tick()
        self._history(user_id, "CHARGE", amount, row.balance)
        return before, row.balance, row.held

    async def charge_once(
        self, user_id: int, amount: int, limit: int, key: str, fingerprint: str
    ) -> ChargeResult | None:
        if (user_id, key) in self._s.keys:
            return None
        before, after, held = result = await self.charge(user_id, amount, limit)
        outcome = {"before": before, "after": after, "held": held}
        self._s.keys[user_id, key] = (StoredKey(fingerprint, outcome), self._db.now)
        return result

    async def charge_many(self, charges: Sequence[tuple[int, int]], limit: int) -> dict[int, ChargeResult | None]:
        return {
            user_id: await self.charge(user_id, amount, limit) if user_id in self._s.balances else None
            for user_id, amount in charges
        }

    async def get(self, user_id: int) -> Balance | None:
        row = self._s.balances.get(user_id)
        return None if row is None else Balance(user_id, row.balance, row.updated_at)

    async def history(self, user_id: int, before_id: int, limit: int) -> list[HistoryRecord]:
        mine = [entry for user, entry in self._s.history if user == user_id and entry.id < before_id]
        return sorted(mine, key=lambda e: e.id, reverse=True)[:limit]

    async def user_exists(self, user_id: int) -> bool:
        return user_id in self._s.users


class FakeIdempotencyKeys(_Repository):
    async def stored(self, user_id: int, key: str) -> StoredKey | None:
        found = self._s.keys.get((user_id, key))
        return None if found is None else found[0]

    async def delete_older_than(self, hours: float) -> int:
        cutoff = self._db.tick() - timedelta(hours=hours)
        old = [k for k, (_, created) in self._s.keys.items() if created < cutoff]
        for k in old:
            del self._s.keys[k]
        return len(old)


class FakePayments(_Repository):
    async def claim_and_lock(
        self, consumer: str, message_ids: Iterable[uuid.UUID], order_ids: Iterable[str], user_ids: Iterable[int]
    ) -> tuple[set[uuid.UUID], dict[str, Payment], dict[int, int]]:
        s = self._s
        new = {m for m in message_ids if (consumer, m) not in s.inbox}
        s.inbox |= {(consumer, m) for m in new}
        records = {o: s.payments[o] for o in order_ids if o in s.payments}
        users = set(user_ids) | {p.user_id for p in records.values() if p.user_id is not None}
        return new, records, {u: s.balances[u].balance for u in users if u in s.balances}

    async def write(self, settlement: Settlement, messages: Sequence[Outgoing]) -> None:
        s = self._s
        if any(p.order_id in s.payments for p in settlement.created):
            raise PaymentRecordRacedError("duplicate key value violates unique constraint order_payments_pkey")
        for p in [*settlement.created, *settlement.updated]:
            s.payments[p.order_id] = p
        now = self._db.tick()
        for user, balance in settlement.balances.items():
            row = s.balances[user]
            row.balance, row.held, row.updated_at = balance, row.held + settlement.held.get(user, 0), now
        for h in settlement.history:
            s.history.append(
                (h.user_id, HistoryRecord(s.next_entry, h.type.value, h.amount, h.balance_after, h.order_id, now))
            )
            s.next_entry += 1
        s.outbox.extend(messages)

    async def release_held(self, order_ids: Sequence[str]) -> int:
        s = self._s
        users: set[int] = set()
        for order_id in set(order_ids):
            p = s.payments.get(order_id)
            if p is None or p.held <= 0 or p.user_id is None:
                continue
            s.payments[order_id] = replace(p, held=0)
            s.balances[p.user_id].held -= p.held
            users.add(p.user_id)
        return len(users)


class FakeUnitOfWork:
    """A transaction over :class:`FakeDatabase` (it works on a copy of the state, which replaces
    the database's on commit: nothing is left unless committed, and a transaction does not see
    what another commits meanwhile), or a single-statement unit (every change lands at once;
    ``publish`` refused), as the real ones."""

    def __init__(self, db: FakeDatabase, *, single_statement: bool = False) -> None:
        self.db = db
        self._single = single_statement
        self._copy: FakeState | None = None
        self._outgoing: list[Outgoing] = []
        self.users = FakeUsers(self)
        self.balances = FakeBalances(self)
        self.keys = FakeIdempotencyKeys(self)
        self.payments = FakePayments(self)

    @property
    def inbox(self) -> FakeInbox:
        return FakeInbox(self.state.inbox)

    @property
    def state(self) -> FakeState:
        if self._single:
            return self.db.state
        if self._copy is None:
            raise RuntimeError("the unit of work is not open")
        return self._copy

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        if self._single:
            raise RuntimeError("a single-statement unit of work cannot publish: open a transaction")
        self._outgoing.append(Outgoing(topic, str(key), message, request_id or current_request_id()))

    async def commit(self) -> None:
        if self._single:
            return
        self.state.outbox.extend(self._outgoing)
        self._outgoing.clear()
        self.db.state = self.state
        self.db.commits += 1

    async def __aenter__(self) -> Self:
        if not self._single:
            self._copy = copy.deepcopy(self.db.state)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._copy = None
        self._outgoing.clear()


class FakeUnitsOfWork:
    """The unit-of-work factory over one :class:`FakeDatabase`."""

    def __init__(self, db: FakeDatabase | None = None) -> None:
        self.db = db or FakeDatabase()
        self.opened: list[FakeUnitOfWork] = []

    def __call__(self, *, single_statement: bool = False) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.db, single_statement=single_statement)
        self.opened.append(uow)
        return uow
