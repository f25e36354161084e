"""balance_service's units of work: the platform's (``shared.db.uow``) carrying the repositories of
``balance_service.db`` on their connection, in a transaction or in single-statement mode (no
``BEGIN``/``COMMIT``) for the hot paths (charges, reads, the release of held money)."""

from __future__ import annotations

import asyncpg

from balance_service.db.balances import PgBalances
from balance_service.db.idempotency import PgIdempotencyKeys
from balance_service.db.payments import PgPayments
from balance_service.db.users import PgUsers
from shared.db.uow import SingleStatement, UnitOfWork
from shared.messaging.envelope import Message


class _Repositories:
    """The repositories of a unit of work, built on its connection when it opens."""

    users: PgUsers
    balances: PgBalances
    keys: PgIdempotencyKeys
    payments: PgPayments

    def bind(self, conn: asyncpg.Connection) -> None:
        self.users = PgUsers(conn)
        self.balances = PgBalances(conn)
        self.keys = PgIdempotencyKeys(conn)
        self.payments = PgPayments(conn)


class TransactionalUnitOfWork(_Repositories, UnitOfWork[None]):
    """One transaction that rolls back unless committed; ``publish`` goes to the outbox on commit."""


class SingleStatementUnitOfWork(_Repositories, SingleStatement[None]):
    """Each statement commits on its own: saves the ``BEGIN`` and ``COMMIT`` round trips on a
    change that is one statement. ``commit`` has nothing to do; ``publish`` is refused (the outbox
    needs a transaction)."""

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        raise RuntimeError("a single-statement unit of work cannot publish: open a transaction")


class PostgresUnitsOfWork:
    """The unit-of-work factory (``service.ports.UnitOfWorkFactory``) over a pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def __call__(self, *, single_statement: bool = False) -> TransactionalUnitOfWork | SingleStatementUnitOfWork:
        if single_statement:
            return SingleStatementUnitOfWork(self.pool)
        return TransactionalUnitOfWork(self.pool)
