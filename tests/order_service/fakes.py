"""In-memory adapters of ``order_service.service.ports``: repositories over plain dicts, units of work
that restore them unless committed (the single-statement one keeps every change at once), fake
catalog and user registry, and an outcome waiter that never sleeps. The repositories pass the same
suite as the PostgreSQL ones (``test_repositories.py``), so the handler tests that use them
(``test_handlers.py``) need no IO."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from order_service.db.outcomes import finished as finished_from_notice
from order_service.domain.errors import UpstreamUnavailableError
from order_service.domain.history import Entry
from order_service.domain.order import Order, OrderLine, OrderStatus, Product
from order_service.domain.saga import TERMINAL, Policy, SagaState
from order_service.service.deps import Deps
from order_service.service.ports import Notice, Row, Times
from shared.known_users import KnownUsers
from shared.messaging.envelope import Outgoing
from shared.messaging.topics import Topics


@dataclass
class SagaRow:
    state: SagaState
    started_at: datetime
    updated_at: datetime


@dataclass
class FakeState:
    """Everything the database would hold."""

    orders: dict[str, Order] = field(default_factory=dict)
    sagas: dict[str, SagaRow] = field(default_factory=dict)
    history: list[tuple[datetime, Entry]] = field(default_factory=list)
    keys: dict[tuple[int, str], tuple[str, str, datetime]] = field(default_factory=dict)
    users: dict[int, tuple[str, datetime]] = field(default_factory=dict)
    inbox: set[tuple[str, object]] = field(default_factory=set)
    outbox: list[Outgoing] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)


class FakeDatabase:
    """The state and the database's clock (strictly increasing, like ``now()`` across statements)."""

    def __init__(self) -> None:
        self.state = FakeState()
        self._last = datetime.now(UTC)
        self.statements = 0

    def now(self) -> datetime:
        self._last = max(datetime.now(UTC), self._last + timedelta(microseconds=1))
        return self._last


def _sorted_lines(order: Order) -> Order:
    """The order as the database reads it back: lines by product id."""
    return replace(order, lines=tuple(sorted(order.lines, key=lambda ln: ln.product_id)))


class FakeOrders:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    def _insert(self, order: Order, saga: SagaState, messages: Sequence[Outgoing], history: Sequence[Entry]) -> None:
        s = self._db.state
        s.orders[order.order_id] = order
        s.sagas[order.order_id] = SagaRow(saga, order.created_at, self._db.now())
        s.outbox.extend(messages)
        s.history.extend((order.created_at, e) for e in history)

    async def add(
        self, order: Order, saga: SagaState, messages: Sequence[Outgoing], history: Sequence[Entry] = ()
    ) -> None:
        self._db.statements += 1
        self._insert(order, saga, messages, history)

    async def add_once(
        self,
        order: Order,
        saga: SagaState,
        messages: Sequence[Outgoing],
        key: str,
        request_hash: str,
        history: Sequence[Entry] = (),
    ) -> bool:
        self._db.statements += 1
        keys = self._db.state.keys
        if (order.user_id, key) in keys:
            return False
        keys[(order.user_id, key)] = (request_hash, order.order_id, self._db.now())
        self._insert(order, saga, messages, history)
        return True

    async def get(self, order_id: str) -> Order | None:
        self._db.statements += 1
        order = self._db.state.orders.get(order_id)
        return _sorted_lines(order) if order else None

    async def of_user(self, user_id: int, limit: int, after: tuple[datetime, str] | None) -> list[Order]:
        self._db.statements += 1
        mine = [o for o in self._db.state.orders.values() if o.user_id == user_id]
        if after is not None:
            mine = [o for o in mine if (o.created_at, o.order_id) < after]
        mine.sort(key=lambda o: (o.created_at, o.order_id), reverse=True)
        return [_sorted_lines(o) for o in mine[:limit]]

    async def lines(self, order_ids: Sequence[str]) -> dict[str, list[OrderLine]]:
        self._db.statements += 1
        orders = self._db.state.orders
        return {oid: list(_sorted_lines(orders[oid]).lines) for oid in order_ids if oid in orders}


class FakeKeys:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def find(self, user_id: int, key: str) -> tuple[str, str] | None:
        self._db.statements += 1
        found = self._db.state.keys.get((user_id, key))
        return (found[0], found[1]) if found else None

    async def expire(self, hours: int) -> None:
        self._db.statements += 1
        cutoff = self._db.now() - timedelta(hours=hours)
        keys = self._db.state.keys
        for k in [k for k, (_, _, at) in keys.items() if at < cutoff]:
            del keys[k]


class FakeSagas:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def claim_and_lock(
        self,
        consumer: str,
        message_ids: Sequence[object],
        order_ids: Sequence[str],
        completing_step: str,
        times: Times | None = None,
    ) -> tuple[set[object], dict[str, SagaState], dict[str, list[OrderLine]]]:
        self._db.statements += 1
        s = self._db.state
        new = set()
        for mid in dict.fromkeys(message_ids):
            if (consumer, mid) not in s.inbox:
                s.inbox.add((consumer, mid))
                new.add(mid)
        states: dict[str, SagaState] = {}
        lines: dict[str, list[OrderLine]] = {}
        for oid in order_ids:
            row = s.sagas.get(oid)
            if row is None:
                continue
            states[oid] = row.state
            if times is not None:
                times[oid] = (row.started_at, row.updated_at)
            if str(row.state.step) == completing_step:
                lines[oid] = list(_sorted_lines(s.orders[oid]).lines)
        return new, states, lines

    async def lock_due(self, limit: int, times: Times | None = None) -> tuple[datetime | None, list[SagaState]]:
        self._db.statements += 1
        now = self._db.now()
        due = [r for r in self._db.state.sagas.values() if r.state.deadline is not None and r.state.deadline <= now]
        due.sort(key=lambda r: r.state.deadline or now)
        due = due[:limit]
        if times is not None:
            times.update((r.state.order_id, (r.started_at, r.updated_at)) for r in due)
        return (now if due else None), [r.state for r in due]

    async def write(
        self,
        states: Sequence[SagaState],
        finished: Sequence[tuple[SagaState, str, str | None]],
        at: datetime,
        messages: Sequence[Outgoing],
        history: Sequence[Entry] = (),
    ) -> None:
        self._db.statements += 1
        s = self._db.state
        now = self._db.now()
        for state in states:
            row = s.sagas.get(state.order_id)
            if row is not None:
                s.sagas[state.order_id] = SagaRow(state, row.started_at, now)
        for state, status, code in finished:
            order = s.orders.get(state.order_id)
            if order is None or order.status is not OrderStatus.PENDING:
                continue
            done = replace(
                order,
                status=OrderStatus(status),
                failure_code=code,
                discount_amount=state.discount_amount,
                paid_amount=state.paid_amount,
                completed_at=at if status == "COMPLETED" else None,
            )
            s.orders[state.order_id] = done
            s.notices.append(
                {
                    "order_id": done.order_id,
                    "status": status,
                    "failure_code": code,
                    "discount_amount": done.discount_amount,
                    "paid_amount": done.paid_amount,
                    "completed_at": done.completed_at.isoformat() if done.completed_at else None,
                }
            )
        s.outbox.extend(messages)
        s.history.extend((at, e) for e in history)

    def _row(self, row: SagaRow) -> Row:
        order = self._db.state.orders[row.state.order_id]
        return {
            "order_id": uuid.UUID(row.state.order_id),
            "status": str(order.status),
            "step": str(row.state.step),
            "attempts": row.state.attempts,
            "deadline": row.state.deadline,
            "started_at": row.started_at,
            "updated_at": row.updated_at,
        }

    async def view(self, order_id: str) -> tuple[Row, Sequence[Row]] | None:
        self._db.statements += 2
        row = self._db.state.sagas.get(order_id)
        if row is None:
            return None
        history = [
            {"at": at, "kind": e.kind, "name": e.name, "detail": e.detail}
            for at, e in self._db.state.history
            if e.order_id == order_id
        ]
        return self._row(row), history

    async def unfinished(
        self, *, step: str | None, started_before: datetime | None, limit: int, after: tuple[datetime, str] | None
    ) -> Sequence[Row]:
        self._db.statements += 1
        terminal = {str(t) for t in TERMINAL}
        rows = [r for r in self._db.state.sagas.values() if str(r.state.step) not in terminal]
        if step is not None:
            rows = [r for r in rows if str(r.state.step) == step]
        if started_before is not None:
            rows = [r for r in rows if r.started_at < started_before]
        if after is not None:
            rows = [r for r in rows if (r.started_at, r.state.order_id) > after]
        rows.sort(key=lambda r: (r.started_at, r.state.order_id))
        return [self._row(r) for r in rows[:limit]]


class FakeKnownUsers:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def is_known(self, user_id: int) -> bool:
        self._db.statements += 1
        return user_id in self._db.state.users

    async def add(self, users: Iterable[tuple[int, str, datetime]]) -> None:
        rows = list(users)
        if rows:
            self._db.statements += 1
        for user_id, name, created_at in rows:
            self._db.state.users.setdefault(user_id, (name, created_at))


class FakeInbox:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def claim_new(self, consumer: str, message_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        self._db.statements += 1
        inbox = self._db.state.inbox
        new = {mid for mid in message_ids if (consumer, mid) not in inbox}
        inbox.update((consumer, mid) for mid in new)
        return new


class FakeUnitOfWork:
    """A transaction over :class:`FakeDatabase` (restored unless committed), or with
    ``single_statement`` every change kept at once (``commit`` does nothing)."""

    def __init__(self, db: FakeDatabase, *, single_statement: bool = False) -> None:
        self._db = db
        self._single = single_statement
        self._saved: FakeState | None = None
        self.committed = False
        self.orders = FakeOrders(db)
        self.keys = FakeKeys(db)
        self.sagas = FakeSagas(db)
        self.users = FakeKnownUsers(db)
        self.inbox = FakeInbox(db)

    async def __aenter__(self) -> Self:
        if not self._single:
            self._saved = copy.deepcopy(self._db.state)
        return self

    async def commit(self) -> None:
        self.committed = True

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._saved is not None and not self.committed:
            self._db.state = self._saved
        self._saved = None


class FakeCatalog:
    def __init__(self, products: dict[int, Product] | None = None) -> None:
        self.products = products or {}
        self.down = False
        self.calls = 0

    async def lookup(self, product_ids: list[int]) -> dict[int, Product]:
        self.calls += 1
        if self.down:
            raise UpstreamUnavailableError("the catalog is unreachable")
        return {pid: self.products[pid] for pid in product_ids if pid in self.products}


class FakeRegistry:
    def __init__(self, users: dict[int, tuple[str, datetime]] | None = None) -> None:
        self.users = users or {}
        self.calls = 0

    async def find(self, user_id: int) -> tuple[str, datetime] | None:
        self.calls += 1
        return self.users.get(user_id)


class FakeWaiter:
    """Resolves at once: a notice already given (:meth:`notify`) finishes the created order, otherwise
    the order is read as it is (what the real waiter does when its time is up)."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.waiting: dict[str, set[asyncio.Future[Notice]]] = {}
        self.waits: list[tuple[str, float, bool]] = []

    def subscribe(self, order_id: str) -> asyncio.Future[Notice]:
        fut: asyncio.Future[Notice] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(order_id, set()).add(fut)
        return fut

    def cancel(self, order_id: str, fut: asyncio.Future[Notice]) -> None:
        futs = self.waiting.get(order_id)
        if futs is not None:
            futs.discard(fut)
            if not futs:
                del self.waiting[order_id]

    def notify(self, notice: dict[str, Any]) -> None:
        for fut in self.waiting.pop(notice["order_id"], ()):
            fut.set_result(notice)

    async def wait(
        self,
        order_id: str,
        fut: asyncio.Future[Notice],
        timeout: float,
        *,
        read_first: bool = True,
        created: Order | None = None,
    ) -> Order | None:
        self.waits.append((order_id, timeout, read_first))
        self.cancel(order_id, fut)
        if fut.done() and created is not None and fut.result() is not None:
            return finished_from_notice(created, fut.result() or {})
        order = self._db.state.orders.get(order_id)
        return _sorted_lines(order) if order else None


TOPICS = Topics("fake.")
POLICY = Policy(step_timeout_s=5, max_attempts=3, backoff_cap_s=30)


@dataclass
class FakeWorld:
    """A :class:`Deps` over fakes, with the fakes at hand."""

    db: FakeDatabase
    catalog: FakeCatalog
    registry: FakeRegistry
    waiter: FakeWaiter
    deps: Deps


def fake_world(
    products: dict[int, Product] | None = None, users: dict[int, tuple[str, datetime]] | None = None, **changes: Any
) -> FakeWorld:
    db = FakeDatabase()
    catalog, registry, waiter = FakeCatalog(products), FakeRegistry(users), FakeWaiter(db)
    deps = Deps(
        users=KnownUsers(lambda: FakeUnitOfWork(db, single_statement=True), registry),
        uow=lambda: FakeUnitOfWork(db),
        statement=lambda: FakeUnitOfWork(db, single_statement=True),
        topics=TOPICS,
        policy=POLICY,
        catalog=catalog,
        waiter=waiter,
        wait_timeout_s=10.0,
        clock=db.now,
        **changes,
    )
    return FakeWorld(db, catalog, registry, waiter, deps)
