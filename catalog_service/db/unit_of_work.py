"""The catalog's units of work: the repositories of ``catalog_service.db`` on one pooled connection.

:class:`CatalogUnitOfWork` is the platform's transaction (``shared.db.uow.UnitOfWork``: rolls back
unless committed, publishes through the outbox on commit, ``uow.inbox`` for the consumer
pipeline). :class:`CatalogSingleStatement` is a connection without ``BEGIN``/``COMMIT``
(``shared.db.uow.SingleStatement``) for the reads that are one statement (a product, a page, a
lookup): PostgreSQL runs a lone statement atomically, so it saves two round trips.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

from catalog_service.db.order_stock import PostgresOrderStock
from catalog_service.db.products import PostgresProducts
from shared.db.uow import SingleStatement, UnitOfWork


class _Repositories:
    """The repositories of a unit of work, built on its connection when it opens."""

    products: PostgresProducts
    order_stock: PostgresOrderStock

    def bind(self, conn: asyncpg.Connection) -> None:
        self.products = PostgresProducts(conn)
        self.order_stock = PostgresOrderStock(conn)


class CatalogUnitOfWork(_Repositories, UnitOfWork[None]):
    """``async with CatalogUnitOfWork(pool) as uow: uow.products ...; await uow.commit()``."""


class CatalogSingleStatement(_Repositories, SingleStatement[None]):
    """The repositories on a pooled connection, no explicit transaction (each statement its own)."""


def unit_of_work(pool: asyncpg.Pool) -> Callable[[], CatalogUnitOfWork]:
    """A factory of transactional units of work on ``pool``."""
    return lambda: CatalogUnitOfWork(pool)


def single_statement(pool: asyncpg.Pool) -> Callable[[], CatalogSingleStatement]:
    """A factory of single-statement units of work on ``pool``."""
    return lambda: CatalogSingleStatement(pool)
