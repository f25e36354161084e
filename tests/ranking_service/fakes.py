"""In-memory adapters of ranking_service's ports (``ranking_service.service.ports``).

``FakeDatabase`` holds the tables; a transactional :class:`FakeUnitOfWork` works on a copy and
writes it back on commit (nothing is kept unless committed); the single-statement mode works on
the tables directly, as autocommit statements do. Day locks are held until the unit of work ends.
Transactions are not isolated from one another beyond that (the handler tests run one at a time).
The abstract suite in ``test_repositories.py`` keeps these honest against PostgreSQL.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Self

from ranking_service.domain.model import ProductSales, RankedProduct, Tally
from tests.support.fakes import FakeInbox


@dataclass
class Run:
    instance_id: str
    products: int = 0
    runs: int = 1


@dataclass
class Tables:
    inbox: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    counted_orders: set[str] = field(default_factory=set)
    sales: dict[tuple[date, int], tuple[int, int]] = field(default_factory=dict)
    names: dict[int, tuple[str, datetime]] = field(default_factory=dict)
    batch_runs: dict[date, Run] = field(default_factory=dict)
    snapshots: dict[date, list[RankedProduct]] = field(default_factory=dict)


class FakeConflictError(Exception):
    """The fake's deadlock: :attr:`FakeUnitsOfWork.conflicts` lists it."""


@dataclass
class FakeDatabase:
    tables: Tables = field(default_factory=Tables)
    day_locks: dict[date, asyncio.Lock] = field(default_factory=dict)
    commits: int = 0
    fail_commits: list[Exception] = field(default_factory=list)
    """Raised (one each) by the next commits, as a deadlock would be."""

    def day_lock(self, day: date) -> asyncio.Lock:
        return self.day_locks.setdefault(day, asyncio.Lock())


class FakeCountedOrders:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def claim(self, consumer: str, events: Sequence[tuple[uuid.UUID, str]]) -> set[str]:
        fresh = []
        for event_id, order_id in events:
            if (consumer, event_id) not in self._t.inbox:
                self._t.inbox.add((consumer, event_id))
                fresh.append(order_id)
        new = {o for o in fresh if o not in self._t.counted_orders}
        self._t.counted_orders |= new
        return new


class FakeSales:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def add(self, tally: Tally) -> None:
        for day, product_id, quantity, orders in tally.sales_rows():
            q, o = self._t.sales.get((day, product_id), (0, 0))
            self._t.sales[(day, product_id)] = (q + quantity, o + orders)
        for product_id, name, at in tally.name_rows():
            known = self._t.names.get(product_id)
            if known is None or known[1] <= at:
                self._t.names[product_id] = (name, at)

    async def top(self, first: date, last: date, limit: int) -> list[ProductSales]:
        totals: dict[int, tuple[int, int]] = {}
        for (day, product_id), (q, o) in self._t.sales.items():
            if first <= day <= last:
                tq, to = totals.get(product_id, (0, 0))
                totals[product_id] = (tq + q, to + o)
        names = {p: name for p, (name, _) in self._t.names.items()}
        lines = [ProductSales(p, names.get(p, ""), q, o) for p, (q, o) in totals.items()]
        return sorted(lines, key=lambda s: (-s.quantity_sold, s.product_id))[:limit]


class FakeBatchRuns:
    def __init__(self, tables: Tables, db: FakeDatabase, held: set[date]) -> None:
        self._t = tables
        self._db = db
        self._held = held

    async def try_lock(self, day: date) -> bool:
        if day in self._held:
            return True
        lock = self._db.day_lock(day)
        if lock.locked():
            return False
        await lock.acquire()
        self._held.add(day)
        return True

    async def lock(self, day: date) -> None:
        if day not in self._held:
            await self._db.day_lock(day).acquire()
            self._held.add(day)

    async def claim(self, day: date, instance_id: str) -> bool:
        if day in self._t.batch_runs:
            return False
        self._t.batch_runs[day] = Run(instance_id)
        return True

    async def mark_rebuilt(self, day: date, instance_id: str) -> None:
        run = self._t.batch_runs.get(day)
        if run is None:
            self._t.batch_runs[day] = Run(instance_id)
        else:
            run.instance_id = instance_id
            run.runs += 1

    async def done_since(self, since: date) -> list[date]:
        return [day for day in self._t.batch_runs if day >= since]


class FakeSnapshots:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def save(self, day: date, ranked: Sequence[RankedProduct]) -> None:
        self._t.snapshots.pop(day, None)
        if ranked:
            self._t.snapshots[day] = list(ranked)
        run = self._t.batch_runs.get(day)
        if run is not None:
            run.products = len(ranked)

    async def get(self, day: date) -> list[RankedProduct]:
        return list(self._t.snapshots.get(day, []))


class FakeUnitOfWork:
    """A transaction (``single_statement=False``) or autocommit statements over :class:`FakeDatabase`."""

    def __init__(self, db: FakeDatabase, *, single_statement: bool = False) -> None:
        self._db = db
        self.single_statement = single_statement
        self._held: set[date] = set()
        self.committed = False

    async def __aenter__(self) -> Self:
        tables = self._db.tables if self.single_statement else copy.deepcopy(self._db.tables)
        self._tables = tables
        self.inbox = FakeInbox(tables.inbox)  # the platform's fake, on the same inbox table
        self.orders = FakeCountedOrders(tables)
        self.sales = FakeSales(tables)
        self.batch_runs = FakeBatchRuns(tables, self._db, self._held)
        self.snapshots = FakeSnapshots(tables)
        return self

    async def commit(self) -> None:
        if self.single_statement:
            return
        if self._db.fail_commits:
            raise self._db.fail_commits.pop(0)
        self._db.tables = self._tables
        self._db.commits += 1
        self.committed = True

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for day in self._held:
            self._db.day_lock(day).release()
        self._held.clear()


class FakeUnitsOfWork:
    """The fake ``UnitOfWorkFactory``."""

    conflicts: tuple[type[Exception], ...] = (FakeConflictError,)

    def __init__(self, db: FakeDatabase | None = None) -> None:
        self.db = db or FakeDatabase()
        self.opened: list[FakeUnitOfWork] = []

    def __call__(self, *, single_statement: bool = False) -> FakeUnitOfWork:
        uow = FakeUnitOfWork(self.db, single_statement=single_statement)
        self.opened.append(uow)
        return uow
