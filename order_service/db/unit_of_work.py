"""Units of work of order_service, exposing its repositories on their connection.

:class:`OrderUnitOfWork` is one transaction (``BEGIN`` ... ``COMMIT``, rolled back unless
committed): the saga batches and the sweeper. :class:`SingleStatement` opens no transaction block
(``commit`` does nothing): for a change that is ONE SQL statement, atomic on its own (placing an
order, with or without an Idempotency-Key, is one), and for reads. It saves the ``BEGIN`` and
``COMMIT`` round trips the hot paths shed in round 3.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import asyncpg

from order_service.db.orders import PgIdempotencyKeys, PgOrders
from order_service.db.sagas import PgSagas
from order_service.db.users import PgKnownUsers
from shared.db.uow import UnitOfWork


class Repositories:
    """Every repository of the service, on one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.orders = PgOrders(conn)
        self.keys = PgIdempotencyKeys(conn)
        self.sagas = PgSagas(conn)
        self.users = PgKnownUsers(conn)


class _Repositories:
    """The repositories of an open unit of work (built when it opens)."""

    _repos: Repositories | None = None

    @property
    def repos(self) -> Repositories:
        if self._repos is None:
            raise RuntimeError("the unit of work is not open")
        return self._repos

    @property
    def orders(self) -> PgOrders:
        return self.repos.orders

    @property
    def keys(self) -> PgIdempotencyKeys:
        return self.repos.keys

    @property
    def sagas(self) -> PgSagas:
        return self.repos.sagas

    @property
    def users(self) -> PgKnownUsers:
        return self.repos.users


class OrderUnitOfWork(_Repositories, UnitOfWork):
    """``async with OrderUnitOfWork(pool) as uow: ... await uow.commit()``: one transaction."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._repos = Repositories(self.conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._repos = None
        await super().__aexit__(exc_type, exc, tb)


class SingleStatement(_Repositories):
    """A pooled connection without a transaction block; each statement commits on its own."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None

    async def __aenter__(self) -> Self:
        self._conn = await self._pool.acquire()
        self._repos = Repositories(self._conn)
        return self

    async def commit(self) -> None:
        """Nothing to commit: every statement committed when it ran."""

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn, self._repos = self._conn, None, None
        if conn is not None:
            await self._pool.release(conn)
