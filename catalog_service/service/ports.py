"""What the catalog's handlers need from the outside: repositories and units of work.

``catalog_service.db`` implements them on PostgreSQL, ``tests/catalog_service/fakes.py`` in
memory; one abstract test suite (``tests/catalog_service/test_repositories.py``) runs on both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Protocol, Self

from catalog_service.domain.model import Product
from catalog_service.domain.stock import OrderRecord, OrderStockStatus
from shared.messaging.envelope import Message
from shared.messaging.pipeline import Inbox


class ProductRepository(Protocol):
    async def add(self, product: Product) -> Product:
        """Store a new product (its id is ignored); the stored one, with its id."""
        ...

    async def get(self, product_id: int, *, for_update: bool = False) -> Product | None: ...

    async def update(self, product: Product) -> Product:
        """Store the product's name, price, stock and status; the stored one."""
        ...

    async def lock_many(self, ids: Sequence[int]) -> dict[int, Product]:
        """Lock and read the products among ``ids`` that exist, in id order."""
        ...

    async def lock_for_batch(self, ids: Sequence[int], order_ids: Sequence[str]) -> dict[int, Product]:
        """Lock and read ``ids`` and the products the orders ``order_ids`` took, in id order."""
        ...

    async def fetch_many(self, ids: Sequence[int]) -> list[Product]:
        """The products among ``ids`` that exist, in id order."""
        ...

    async def page(self, *, only_sellable: bool, after: int, limit: int) -> list[Product]:
        """Up to ``limit`` products with id > ``after`` (SELLABLE ones only if asked), in id order."""
        ...


class OrderStockRepository(Protocol):
    async def claim_many(self, claims: Mapping[str, OrderStockStatus]) -> set[str]:
        """Record every order of ``claims`` not yet known with its status; the ones that were new."""
        ...

    async def read_many(self, order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        """The records of the known orders among ``order_ids``, locked, with what each took."""
        ...

    async def write_batch(
        self,
        products: Sequence[Product],
        orders: Mapping[str, OrderRecord],
        lines: Mapping[str, Mapping[int, int]],
    ) -> None:
        """Store the products' stock and status, the orders' records and the lines taken, at once."""
        ...


class Repositories(Protocol):
    """A connection's repositories: ``async with factory() as repos: await repos.products.get(...)``."""

    @property
    def products(self) -> ProductRepository: ...

    @property
    def order_stock(self) -> OrderStockRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class UnitOfWork(Repositories, Protocol):
    """One transaction: rolls back unless committed; published messages go out with the commit;
    ``inbox`` for the consumer pipeline (a ``shared.messaging.pipeline.Transaction``)."""

    @property
    def inbox(self) -> Inbox: ...

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None: ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
SingleStatementFactory = Callable[[], Repositories]
"""Repositories without ``BEGIN``/``COMMIT``: for a use case that runs a single statement."""
