"""Unit of work over asyncpg: one transaction that rolls back unless committed.

Messages for other services are collected with :meth:`UnitOfWork.publish` and written to the
outbox inside the same transaction when :meth:`UnitOfWork.commit` is called.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import asyncpg

from shared.context import current_request_id
from shared.db.outbox import enqueue
from shared.messaging.envelope import Message, Outgoing


class UnitOfWork:
    """``async with UnitOfWork(pool) as uow: ...; await uow.commit()``."""

    def __init__(self, pool: asyncpg.Pool, *, isolation: str = "read_committed") -> None:
        self._pool = pool
        self._isolation = isolation
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None
        self._tx: asyncpg.transaction.Transaction | None = None
        self._outgoing: list[Outgoing] = []
        self._done = False

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn  # type: ignore[return-value]

    async def __aenter__(self) -> Self:
        self._conn = await self._pool.acquire()
        try:
            self._tx = self._conn.transaction(isolation=self._isolation)
            await self._tx.start()
        except BaseException:
            await self._pool.release(self._conn)
            self._conn = None
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
            if self._conn is not None:
                await self._pool.release(self._conn)
            self._conn = None
            self._outgoing.clear()
