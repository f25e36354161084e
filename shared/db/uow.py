"""Units of work over asyncpg: a transactional one, and a single-statement one for hot paths.

:class:`UnitOfWork` is one transaction that rolls back unless committed. Messages for other
services are collected with :meth:`UnitOfWork.publish` and written to the outbox inside the same
transaction when :meth:`UnitOfWork.commit` is called.

:class:`SingleStatement` is a connection without ``BEGIN``/``COMMIT``, for a change that is one
SQL statement (PostgreSQL runs a lone statement atomically in its own transaction): the hot paths
measured in round 3 keep their round trips.

Both carry repositories built on their connection, in either of two ways:

- a ``repositories`` factory, ``callable(conn) -> R``, whose result is ``uow.repos``::

      UnitOfWork(pool, repositories=PaymentRepositories)  # uow.repos.payments

- a subclass that overrides :meth:`bind` and sets its repositories as attributes
  (cosmicpython's shape)::

      class BalanceUnitOfWork(UnitOfWork[None]):
          def bind(self, conn: asyncpg.Connection) -> None:
              self.payments = PgPayments(conn)

Every unit of work also exposes the inbox on its connection (``uow.inbox``), which is what the
consumer pipeline (:mod:`shared.messaging.pipeline`) claims messages through.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Protocol, Self, overload

import asyncpg
from typing_extensions import TypeVar

from shared.context import current_request_id
from shared.db.inbox import Inbox, PgInbox
from shared.db.outbox import enqueue
from shared.messaging.envelope import Message, Outgoing

R = TypeVar("R", default=None)
"""What ``uow.repos`` is: ``None`` without a ``repositories`` factory (a bare ``UnitOfWork``)."""

Repositories = Callable[[asyncpg.Connection], R]
"""Builds a unit of work's repositories on its connection."""


class Connected(Protocol):
    """Anything that holds a connection (a unit of work of either kind)."""

    @property
    def conn(self) -> asyncpg.Connection: ...


class _OnConnection(Generic[R]):
    """What both units of work share: a pooled connection, its repositories and inbox."""

    inbox: Inbox
    """The consumer inbox on this connection (set when the unit of work opens)."""

    def __init__(self, pool: asyncpg.Pool, repositories: Repositories[R] | None) -> None:
        self._pool = pool
        self._uow_factory = repositories
        self._conn: Any = None
        self._uow_repos: R | None = None

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    @property
    def repos(self) -> R:
        """What the ``repositories`` factory built on this connection (``None`` without one)."""
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._uow_repos  # type: ignore[return-value]

    def bind(self, conn: asyncpg.Connection) -> None:
        """Called with the connection once it is acquired: a subclass builds its repositories here."""

    def unbind(self) -> None:
        """Called before the connection goes back to the pool: a subclass drops its repositories."""

    async def _acquire(self) -> None:
        self._conn = await self._pool.acquire()
        try:
            self.inbox = PgInbox(self._conn)
            if self._uow_factory is not None:
                self._uow_repos = self._uow_factory(self._conn)
            self.bind(self._conn)
        except BaseException:
            await self._release()
            raise

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        self._uow_repos = None
        try:
            self.unbind()
        finally:
            if conn is not None:
                await self._pool.release(conn)


class UnitOfWork(_OnConnection[R]):
    """``async with UnitOfWork(pool) as uow: ...; await uow.commit()``."""

    @overload
    def __init__(self: UnitOfWork[None], pool: asyncpg.Pool, *, isolation: str = "read_committed") -> None: ...

    @overload
    def __init__(
        self, pool: asyncpg.Pool, *, isolation: str = "read_committed", repositories: Repositories[R]
    ) -> None: ...

    def __init__(
        self, pool: asyncpg.Pool, *, isolation: str = "read_committed", repositories: Repositories[R] | None = None
    ) -> None:
        super().__init__(pool, repositories)
        self._isolation = isolation
        self._tx: asyncpg.transaction.Transaction | None = None
        self._outgoing: list[Outgoing] = []
        self._done = False

    async def __aenter__(self) -> Self:
        await self._acquire()
        try:
            self._tx = self.conn.transaction(isolation=self._isolation)
            await self._tx.start()
        except BaseException:
            await self._release()
            raise
        return self

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        """Queue ``message`` for ``topic``; it is written to the outbox on commit."""
        self._outgoing.append(Outgoing(topic, str(key), message, request_id or current_request_id()))

    async def commit(self) -> None:
        assert self._tx is not None
        await enqueue(self.conn, self._outgoing)
        await self._tx.commit()
        self._done = True

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._done and self._tx is not None and not self.conn.is_closed():
                await self._tx.rollback()
        except Exception:
            # A COMMIT interrupted (a cancellation at shutdown, a lost connection) leaves asyncpg's
            # transaction "in error state" and its rollback raises; that must not replace the
            # reason we are leaving, above all a CancelledError, which the consumer would take for
            # a transient failure and retry forever instead of stopping. The connection goes back
            # suspect and is reset or discarded by the pool (shared.db.pool).
            if exc is None:
                raise
        finally:
            self._tx = None
            self._outgoing.clear()
            await self._release()


class SingleStatement(_OnConnection[R]):
    """A connection without an explicit transaction, for a change that is one SQL statement.

    PostgreSQL runs a lone statement atomically in its own transaction, so this saves the
    ``BEGIN`` and ``COMMIT`` round trips of :class:`UnitOfWork` on the hot paths. Each statement
    commits as it runs: :meth:`commit` is there so that a handler written for a unit of work runs
    unchanged, and does nothing; :meth:`publish` is refused (the outbox needs a transaction).
    """

    @overload
    def __init__(self: SingleStatement[None], pool: asyncpg.Pool) -> None: ...

    @overload
    def __init__(self, pool: asyncpg.Pool, *, repositories: Repositories[R]) -> None: ...

    def __init__(self, pool: asyncpg.Pool, *, repositories: Repositories[R] | None = None) -> None:
        super().__init__(pool, repositories)

    async def __aenter__(self) -> Self:
        await self._acquire()
        return self

    async def commit(self) -> None:
        """Nothing to do: each statement committed when it ran."""

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        """Refused: the outbox needs a transaction (open a :class:`UnitOfWork`)."""
        raise RuntimeError("a single-statement unit of work cannot publish: open a transaction")

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._release()


__all__ = ["Connected", "Repositories", "SingleStatement", "UnitOfWork"]
