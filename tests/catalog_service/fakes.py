"""In-memory adapters of ``catalog_service.service.ports``: the handlers' tests run on these, with no IO.

One :class:`FakeDatabase` holds the tables; :class:`FakeUnitOfWork` works on it and puts it back
as it was unless committed (published messages reach ``database.outbox`` only with the commit);
:class:`FakeSingleStatement` works on it directly. ``tests/catalog_service/test_repositories.py``
runs the same suite on these and on the PostgreSQL repositories, so the two cannot drift.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from catalog_service.bootstrap import Deps
from catalog_service.domain.model import Product
from catalog_service.domain.stock import OrderRecord, OrderStockStatus, replay_refusal
from shared.context import current_request_id
from shared.messaging.envelope import Message, Outgoing

_BIGINT = range(-(2**63), 2**63)


@dataclass
class OrderRow:
    """A row of ``order_stock``."""

    status: OrderStockStatus
    failure_code: str | None = None
    failure_product_id: int | None = None


@dataclass
class FakeDatabase:
    """The catalog's tables (and the platform's inbox and outbox) in memory."""

    products: dict[int, Product] = field(default_factory=dict)
    orders: dict[str, OrderRow] = field(default_factory=dict)
    lines: dict[str, dict[int, int]] = field(default_factory=dict)  # order_stock_lines: order -> product -> qty
    inbox: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    outbox: list[Outgoing] = field(default_factory=list)
    next_id: int = 1
    commits: int = 0

    def snapshot(self) -> FakeDatabase:
        return copy.deepcopy(self)

    def restore(self, snapshot: FakeDatabase) -> None:
        self.__dict__.update(snapshot.__dict__)


class FakeProducts:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def add(self, product: Product) -> Product:
        now = datetime.now(UTC)
        stored = replace(product, product_id=self._db.next_id, created_at=now, updated_at=now)
        self._db.next_id += 1
        self._db.products[stored.product_id] = stored
        return stored

    async def get(self, product_id: int, *, for_update: bool = False) -> Product | None:
        return self._db.products.get(product_id)

    async def lock_many(self, ids: Sequence[int]) -> dict[int, Product]:
        return {pid: self._db.products[pid] for pid in sorted(set(ids)) if pid in self._db.products}

    async def lock_for_batch(self, ids: Sequence[int], order_ids: Sequence[str]) -> dict[int, Product]:
        taken = [pid for order_id in order_ids for pid in self._db.lines.get(order_id, {})]
        return await self.lock_many([*ids, *taken])

    async def update(self, product: Product) -> Product:
        current = self._db.products[product.product_id]
        stored = replace(
            current,
            name=product.name,
            price=product.price,
            stock=product.stock,
            status=product.status,
            updated_at=datetime.now(UTC),
        )
        self._db.products[stored.product_id] = stored
        return stored

    async def fetch_many(self, ids: Sequence[int]) -> list[Product]:
        return list((await self.lock_many(ids)).values())

    async def page(self, *, only_sellable: bool, after: int, limit: int) -> list[Product]:
        found = [
            p
            for pid, p in sorted(self._db.products.items())
            if pid > after and (not only_sellable or p.status.value == "SELLABLE")
        ]
        return found[:limit]


class FakeOrderStock:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def claim_many(self, claims: Mapping[str, OrderStockStatus]) -> set[str]:
        new = {order_id for order_id in claims if order_id not in self._db.orders}
        for order_id in sorted(new):
            self._db.orders[order_id] = OrderRow(claims[order_id])
        return new

    async def read_many(self, order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        records = {}
        for order_id in sorted(set(order_ids)):
            row = self._db.orders.get(order_id)
            if row is None:
                continue
            failure = None
            if row.status is OrderStockStatus.FAILED:
                failure = replay_refusal(row.status, row.failure_code, row.failure_product_id)
            records[order_id] = OrderRecord(row.status, failure, dict(sorted(self._db.lines.get(order_id, {}).items())))
        return records

    async def write_batch(
        self,
        products: Sequence[Product],
        orders: Mapping[str, OrderRecord],
        lines: Mapping[str, Mapping[int, int]],
    ) -> None:
        now = datetime.now(UTC)
        for product in products:
            if product.product_id in self._db.products:
                current = self._db.products[product.product_id]
                self._db.products[product.product_id] = replace(
                    current, stock=product.stock, status=product.status, updated_at=now
                )
        for order_id, record in orders.items():
            if order_id in self._db.orders:
                failure = record.failure
                self._db.orders[order_id] = OrderRow(
                    record.status,
                    failure.code.value if failure else None,
                    failure.product_id if failure and failure.product_id in _BIGINT else None,
                )
        for order_id, taken in lines.items():
            if order_id not in self._db.orders:
                raise KeyError(f"order_stock_lines: order {order_id} is not in order_stock")
            stored = self._db.lines.setdefault(order_id, {})
            for pid, qty in taken.items():
                if pid in stored:
                    raise KeyError(f"order_stock_lines: ({order_id}, {pid}) already exists")
                stored[pid] = qty


class FakeInbox:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def claim_new(self, consumer: str, message_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        new = set()
        for message_id in dict.fromkeys(message_ids):
            if (consumer, message_id) not in self._db.inbox:
                self._db.inbox.add((consumer, message_id))
                new.add(message_id)
        return new


class FakeSingleStatement:
    """The repositories straight on the database (every change is its own transaction)."""

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.products = FakeProducts(db)
        self.order_stock = FakeOrderStock(db)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class FakeUnitOfWork(FakeSingleStatement):
    """A transaction on the fake database: everything is undone unless committed."""

    def __init__(self, db: FakeDatabase) -> None:
        super().__init__(db)
        self.inbox = FakeInbox(db)
        self._before: FakeDatabase | None = None
        self._outgoing: list[Outgoing] = []
        self.committed = False

    async def __aenter__(self) -> Self:
        self._before = self.db.snapshot()
        return self

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        self._outgoing.append(Outgoing(topic, str(key), message, request_id or current_request_id()))

    async def commit(self) -> None:
        self.db.outbox.extend(self._outgoing)
        self.db.commits += 1
        self.committed = True

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.committed and self._before is not None:
            self.db.restore(self._before)
        self._before = None
        self._outgoing.clear()


def fake_deps(db: FakeDatabase | None = None, replies_topic: str = "saga.replies") -> Deps:
    """``catalog_service.bootstrap.Deps`` on the fakes (on ``db``, a new empty one by default)."""
    database = db if db is not None else FakeDatabase()
    return Deps(
        uow=lambda: FakeUnitOfWork(database),
        single_statement=lambda: FakeSingleStatement(database),
        replies_topic=replies_topic,
    )
