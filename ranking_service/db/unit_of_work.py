"""The units of work of ranking_service: one transaction, or one connection without BEGIN/COMMIT
(the read path: a lone statement needs no transaction), both exposing the repositories."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import asyncpg

from ranking_service.db.batch import PgBatchRuns, PgSnapshots
from ranking_service.db.counted import PgCountedOrders
from ranking_service.db.sales import PgSales
from shared.db.uow import UnitOfWork


class _Repositories:
    """The repositories, built on the unit of work's connection when it opens."""

    orders: PgCountedOrders
    sales: PgSales
    batch_runs: PgBatchRuns
    snapshots: PgSnapshots

    def _bind(self, conn: asyncpg.Connection) -> None:
        self.orders = PgCountedOrders(conn)
        self.sales = PgSales(conn)
        self.batch_runs = PgBatchRuns(conn)
        self.snapshots = PgSnapshots(conn)


class RankingUnitOfWork(UnitOfWork, _Repositories):
    """The platform's transactional unit of work (``shared.db.uow``) with ranking's repositories."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._bind(self.conn)
        return self


class SingleStatement(_Repositories):
    """A pooled connection without an explicit transaction: each statement commits on its own, so
    a read costs no BEGIN/COMMIT round trips. :meth:`commit` has nothing to do."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None

    async def __aenter__(self) -> Self:
        self._conn = await self._pool.acquire()
        self._bind(self._conn)
        return self

    async def commit(self) -> None:
        return None

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)


class UnitsOfWork:
    """The factory the handlers get (``service.ports.UnitOfWorkFactory``)."""

    conflicts: tuple[type[Exception], ...] = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def __call__(self, *, single_statement: bool = False) -> RankingUnitOfWork | SingleStatement:
        return SingleStatement(self._pool) if single_statement else RankingUnitOfWork(self._pool)
