"""The units of work of ranking_service: the platform's (``shared.db.uow``) with ranking's
repositories bound to their connection: one transaction, or one connection without BEGIN/COMMIT
(the read path: a lone statement needs no transaction)."""

from __future__ import annotations

import asyncpg

from ranking_service.db.batch import PgBatchRuns, PgSnapshots
from ranking_service.db.counted import PgCountedOrders
from ranking_service.db.sales import PgSales
from shared.db.errors import CONFLICTS
from shared.db.uow import SingleStatement, UnitOfWork


class _Repositories:
    """Ranking's repositories, built on the unit of work's connection when it opens."""

    orders: PgCountedOrders
    sales: PgSales
    batch_runs: PgBatchRuns
    snapshots: PgSnapshots

    def bind(self, conn: asyncpg.Connection) -> None:
        self.orders = PgCountedOrders(conn)
        self.sales = PgSales(conn)
        self.batch_runs = PgBatchRuns(conn)
        self.snapshots = PgSnapshots(conn)


class RankingUnitOfWork(_Repositories, UnitOfWork):
    """One transaction, rolled back unless committed."""


class RankingSingleStatement(_Repositories, SingleStatement):
    """Statements that each commit on their own (no BEGIN/COMMIT round trips)."""


class UnitsOfWork:
    """The factory the handlers get (``service.ports.UnitOfWorkFactory``)."""

    conflicts: tuple[type[Exception], ...] = CONFLICTS

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def __call__(self, *, single_statement: bool = False) -> RankingUnitOfWork | RankingSingleStatement:
        return RankingSingleStatement(self._pool) if single_statement else RankingUnitOfWork(self._pool)
