"""balance_service's units of work over asyncpg: the repositories of ``balance_service.db`` on the
unit's connection, in a transaction or in single-statement mode (no ``BEGIN``/``COMMIT``) for the
hot paths (charges, reads, the release of held money)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import asyncpg

from balance_service.db.balances import PgBalances
from balance_service.db.idempotency import PgIdempotencyKeys
from balance_service.db.payments import PgPayments
from balance_service.db.users import PgUsers
from shared.db import uow as shared_uow
from shared.messaging.envelope import Message


class _Repositories:
    """The repositories of a unit of work, built on its connection when it opens."""

    users: PgUsers
    balances: PgBalances
    keys: PgIdempotencyKeys
    payments: PgPayments

    def _bind(self, conn: asyncpg.Connection) -> None:
        self.users = PgUsers(conn)
        self.balances = PgBalances(conn)
        self.keys = PgIdempotencyKeys(conn)
        self.payments = PgPayments(conn)


class TransactionalUnitOfWork(_Repositories, shared_uow.UnitOfWork):
    """One transaction that rolls back unless committed; ``publish`` goes to the outbox on commit."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._bind(self.conn)
        return self


class SingleStatement(_Repositories):
    """A connection without an explicit transaction, for a change that is one SQL statement.

    PostgreSQL runs a lone statement atomically in its own transaction, so this saves the
    ``BEGIN`` and ``COMMIT`` round trips of a transaction on the charge path. ``commit`` has
    nothing to do; ``publish`` is refused (the outbox needs a transaction).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        raise RuntimeError("a single-statement unit of work cannot publish: open a transaction")

    async def commit(self) -> None:
        """Each statement committed on its own."""

    async def __aenter__(self) -> Self:
        self._conn = await self._pool.acquire()
        self._bind(self._conn)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)


class PostgresUnitsOfWork:
    """The unit-of-work factory (``service.ports.UnitOfWorkFactory``) over a pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def __call__(self, *, single_statement: bool = False) -> TransactionalUnitOfWork | SingleStatement:
        if single_statement:
            return SingleStatement(self.pool)
        return TransactionalUnitOfWork(self.pool)
