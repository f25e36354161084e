"""In-memory adapters of ``catalog_service.service.ports``: the handlers' tests run on these, with no IO.

Built on the platform's fakes (``tests.support.fakes``): a :class:`FakeDatabase` holds the
committed state (the catalog's :class:`Tables`, the inbox, the outbox); :class:`FakeUnitOfWork`
works on a copy and swaps it in on commit (published messages reach the outbox only then);
:class:`FakeSingleStatement` works on the committed state directly.
``tests/catalog_service/test_repositories.py`` runs the same suite on these and on the PostgreSQL
repositories, so the two cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from catalog_service.bootstrap import Deps
from catalog_service.domain.model import Product
from catalog_service.domain.stock import OrderRecord, OrderStockStatus, replay_refusal
from shared.messaging.envelope import Outgoing
from tests.support import fakes as support
from tests.support.fakes import FakeState

_BIGINT = range(-(2**63), 2**63)


@dataclass
class OrderRow:
    """A row of ``order_stock``."""

    status: OrderStockStatus
    failure_code: str | None = None
    failure_product_id: int | None = None


@dataclass
class Tables:
    """The catalog's tables: ``products``, ``order_stock`` and ``order_stock_lines``."""

    products: dict[int, Product] = field(default_factory=dict)
    orders: dict[str, OrderRow] = field(default_factory=dict)
    lines: dict[str, dict[int, int]] = field(default_factory=dict)  # order -> product -> quantity
    next_id: int = 1


def tables(state: FakeState) -> Tables:
    found = state.tables.setdefault("catalog", Tables())
    assert isinstance(found, Tables)
    return found


class FakeDatabase(support.FakeDatabase):
    """The committed state (``tests.support.fakes``), with the catalog's tables at hand."""

    @property
    def products(self) -> dict[int, Product]:
        return tables(self.state).products

    @property
    def orders(self) -> dict[str, OrderRow]:
        return tables(self.state).orders

    @property
    def lines(self) -> dict[str, dict[int, int]]:
        return tables(self.state).lines

    @property
    def outbox(self) -> list[Outgoing]:
        return self.state.outbox


class FakeProducts:
    def __init__(self, db: Tables) -> None:
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
    def __init__(self, db: Tables) -> None:
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


class FakeUnitOfWork(support.FakeUnitOfWork[None]):
    """A transaction on a copy of the committed state (``tests.support.fakes``): nothing is
    stored unless committed; published messages reach the outbox with the commit."""

    products: FakeProducts
    order_stock: FakeOrderStock

    def bind(self, state: FakeState) -> None:
        self.products = FakeProducts(tables(state))
        self.order_stock = FakeOrderStock(tables(state))


class FakeSingleStatement:
    """The repositories straight on the committed state (every statement is its own transaction)."""

    products: FakeProducts
    order_stock: FakeOrderStock

    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    async def __aenter__(self) -> Self:
        self.products = FakeProducts(tables(self.db.state))
        self.order_stock = FakeOrderStock(tables(self.db.state))
        return self

    async def commit(self) -> None:
        """Nothing to do: each statement committed when it ran."""

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def fake_deps(db: FakeDatabase | None = None, replies_topic: str = "saga.replies") -> Deps:
    """``catalog_service.bootstrap.Deps`` on the fakes (on ``db``, a new empty one by default)."""
    database = db if db is not None else FakeDatabase()
    return Deps(
        uow=lambda: FakeUnitOfWork(database),
        single_statement=lambda: FakeSingleStatement(database),
        replies_topic=replies_topic,
    )
