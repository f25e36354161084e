"""coupon_service's units of work: the platform's (``shared.db.uow``) with the repositories bound
to their connection (``uow.coupons``, ``uow.user_coupons``, ``uow.orders``, and ``uow.users``: the shared known-users
projection's ``shared.db.known_users.PgKnownUsers``).

- :class:`CouponUnitOfWork`: one transaction (rolls back unless committed; the outbox written on
  commit; ``uow.inbox`` for the consumer pipeline).
- :class:`CouponSingleStatement`: a pooled connection without ``BEGIN``/``COMMIT`` for the paths
  that run one statement at a time (every issue path, the reads, the known-users lookups):
  PostgreSQL runs a lone statement atomically, so the two round trips are saved, as when those
  paths ran their statements on the pool.
"""

from __future__ import annotations

import asyncpg

from coupon_service.db.coupons import PgCoupons
from coupon_service.db.saga import PgOrderCoupons
from coupon_service.db.user_coupons import PgUserCoupons
from shared.db.known_users import PgKnownUsers
from shared.db.uow import SingleStatement, UnitOfWork


class _Bound:
    """The repositories of coupon_service, built on the unit of work's connection."""

    coupons: PgCoupons
    user_coupons: PgUserCoupons
    orders: PgOrderCoupons
    users: PgKnownUsers

    def bind(self, conn: asyncpg.Connection) -> None:
        self.coupons = PgCoupons(conn)
        self.user_coupons = PgUserCoupons(conn)
        self.orders = PgOrderCoupons(conn)
        self.users = PgKnownUsers(conn)


class CouponUnitOfWork(_Bound, UnitOfWork):
    """One transaction with the repositories: ``async with CouponUnitOfWork(pool) as uow``."""


class CouponSingleStatement(_Bound, SingleStatement):
    """The repositories on a connection where each statement commits on its own."""
