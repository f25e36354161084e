"""order_service's units of work: the platform's (``shared.db.uow``) with the repositories bound to
their connection (``uow.orders``, ``uow.keys``, ``uow.sagas``, ``uow.users``; ``uow.inbox`` for the
consumer pipeline).

- :class:`OrderUnitOfWork`: one transaction (rolls back unless committed): the saga's reply batches,
  the sweeper, the users projection.
- :class:`OrderSingleStatement`: a pooled connection without ``BEGIN``/``COMMIT``, for a change that
  is ONE statement, atomic on its own (placing an order, with or without an Idempotency-Key), and
  for reads: the round trips the hot paths shed in round 3 stay shed.
"""

from __future__ import annotations

import asyncpg

from order_service.db.orders import PgIdempotencyKeys, PgOrders
from order_service.db.sagas import PgSagas
from shared.db.known_users import PgKnownUsers
from shared.db.uow import SingleStatement, UnitOfWork


class _Bound:
    """The repositories of order_service, built on the unit of work's connection."""

    orders: PgOrders
    keys: PgIdempotencyKeys
    sagas: PgSagas
    users: PgKnownUsers

    def bind(self, conn: asyncpg.Connection) -> None:
        self.orders = PgOrders(conn)
        self.keys = PgIdempotencyKeys(conn)
        self.sagas = PgSagas(conn)
        self.users = PgKnownUsers(conn)


class OrderUnitOfWork(_Bound, UnitOfWork):
    """One transaction with the repositories: ``async with OrderUnitOfWork(pool) as uow``."""


class OrderSingleStatement(_Bound, SingleStatement):
    """The repositories on a connection where each statement commits on its own."""
