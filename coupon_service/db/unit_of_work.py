"""coupon_service's units of work: repositories built on the unit of work's connection.

- :class:`CouponUnitOfWork`: the platform's transaction (``shared.db.uow.UnitOfWork``: rolls back
  unless committed, outbox written on commit) with the repositories.
- :class:`SingleStatement`: a pooled connection without ``BEGIN``/``COMMIT`` for the paths that
  are one statement at a time (every issue path, the reads, the known-users lookups): PostgreSQL
  runs a lone statement atomically, so the two round trips are saved (as before this module, when
  those paths ran their statements on the pool).
- :class:`Joined`: the repositories on a transaction someone else opened (the consumer's batch
  transaction of ``shared.db.consume.apply_batch``), so a saga handler runs in it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import asyncpg

from coupon_service.db.coupons import PgCoupons
from coupon_service.db.saga import PgOrderCoupons
from coupon_service.db.user_coupons import PgUserCoupons
from coupon_service.db.users import PgKnownUsers
from shared.db.uow import UnitOfWork
from shared.messaging.envelope import Message


class Repositories:
    """The repositories of coupon_service on ``self.conn``."""

    @property
    def conn(self) -> asyncpg.Connection:
        raise NotImplementedError

    @property
    def coupons(self) -> PgCoupons:
        return PgCoupons(self.conn)

    @property
    def user_coupons(self) -> PgUserCoupons:
        return PgUserCoupons(self.conn)

    @property
    def orders(self) -> PgOrderCoupons:
        return PgOrderCoupons(self.conn)

    @property
    def users(self) -> PgKnownUsers:
        return PgKnownUsers(self.conn)


class CouponUnitOfWork(UnitOfWork, Repositories):
    """One transaction with the repositories: ``async with CouponUnitOfWork(pool) as uow``."""


class SingleStatement(Repositories):
    """A connection without an explicit transaction: each statement commits on its own."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        raise RuntimeError("a single-statement unit of work has no outbox; use CouponUnitOfWork")

    async def commit(self) -> None:
        """Nothing to do: every statement committed on its own."""

    async def __aenter__(self) -> Self:
        self._conn = await self._pool.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)


class Joined(Repositories):
    """The repositories on an open ``UnitOfWork`` (its transaction, its outbox); commit and
    rollback stay with whoever opened it."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    @property
    def conn(self) -> asyncpg.Connection:
        return self._uow.conn

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        self._uow.publish(topic, key, message, request_id)

    async def commit(self) -> None:
        """Nothing here: the batch's transaction commits once, after every message."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
