"""Units of work: the platform's transactional one, and a single-statement one for hot paths."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

import asyncpg

from shared.db.uow import UnitOfWork

__all__ = ["Connected", "SingleStatement", "UnitOfWork"]


class Connected(Protocol):
    """Anything that holds a connection (a unit of work)."""

    @property
    def conn(self) -> asyncpg.Connection: ...


class SingleStatement:
    """A connection without an explicit transaction, for a change that is one SQL statement.

    PostgreSQL runs a lone statement atomically in its own transaction, so this saves the
    ``BEGIN`` and ``COMMIT`` round trips of :class:`UnitOfWork` on the charge path.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.pool.PoolConnectionProxy | None = None

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn  # type: ignore[return-value]

    async def __aenter__(self) -> Self:
        self._conn = await self._pool.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._pool.release(conn)
