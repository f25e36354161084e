"""The catalog's units of work: the repositories on one connection of the pool.

:class:`CatalogUnitOfWork` is the platform's transaction (``shared.db.uow.UnitOfWork``: rolls back
unless committed, publishes through the outbox on commit). :class:`CatalogSingleStatement` is a
connection without ``BEGIN``/``COMMIT`` for the reads that are one statement (a product, a page,
a lookup): PostgreSQL runs a lone statement atomically, so it saves two round trips.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Self

import asyncpg

from catalog_service.db.order_stock import PostgresOrderStock
from catalog_service.db.products import PostgresProducts
from shared.db.inbox import claim_new
from shared.db.uow import UnitOfWork


class PostgresInbox:
    """The messages a consumer already applied (``shared.db.inbox``), on the unit of work's connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def claim_new(self, consumer: str, message_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Record ``message_ids`` for ``consumer``; the ones that were new (one statement, or none)."""
        return await claim_new(self._conn, consumer, message_ids)


class CatalogUnitOfWork(UnitOfWork):
    """``async with CatalogUnitOfWork(pool) as uow: uow.products ...; await uow.commit()``."""

    products: PostgresProducts
    order_stock: PostgresOrderStock
    inbox: PostgresInbox

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        conn = self.conn
        self.products = PostgresProducts(conn)
        self.order_stock = PostgresOrderStock(conn)
        self.inbox = PostgresInbox(conn)
        return self


class CatalogSingleStatement:
    """The repositories on a pooled connection, no explicit transaction (each statement its own)."""

    products: PostgresProducts
    order_stock: PostgresOrderStock

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> Self:
        conn = await self._pool.acquire()
        self._conn = conn
        self.products = PostgresProducts(conn)
        self.order_stock = PostgresOrderStock(conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)


def unit_of_work(pool: asyncpg.Pool) -> Callable[[], CatalogUnitOfWork]:
    """A factory of transactional units of work on ``pool``."""
    return lambda: CatalogUnitOfWork(pool)


def single_statement(pool: asyncpg.Pool) -> Callable[[], CatalogSingleStatement]:
    """A factory of single-statement units of work on ``pool``."""
    return lambda: CatalogSingleStatement(pool)
