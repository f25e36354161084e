"""Ports of the service layer: the repositories and the unit of work the handlers need.

``db/`` implements them over PostgreSQL; ``tests/ranking_service/fakes.py`` in memory. One
abstract suite (``tests/ranking_service/test_repositories.py``) runs against both.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Protocol, Self

from ranking_service.domain.model import ProductSales, RankedProduct, Tally
from shared.messaging.pipeline import Inbox

Clock = Callable[[], datetime]
"""Returns the current instant, timezone-aware (tests inject their own)."""


class CountedOrders(Protocol):
    """Which completed orders are counted: event ids (the inbox) and order ids (kept for good)."""

    async def claim(self, consumer: str, events: Sequence[tuple[uuid.UUID, str]]) -> set[str]:
        """Record ``(event_id, order_id)`` pairs; return the order ids new to both (to count now)."""
        ...


class Sales(Protocol):
    """The daily sales counters and the latest product names."""

    async def add(self, tally: Tally) -> None:
        """Add a batch's counters and keep the latest names."""
        ...

    async def top(self, first: date, last: date, limit: int) -> list[ProductSales]:
        """The ``limit`` best-selling products over ``first..last`` (inclusive), best first."""
        ...


class BatchRuns(Protocol):
    """Which days the daily batch rolled up, and the per-day lock it rolls them up under."""

    async def try_lock(self, day: date) -> bool:
        """Take the day's lock for this transaction, or ``False`` when another holds it."""
        ...

    async def lock(self, day: date) -> None:
        """Wait for the day's lock (for an on-demand rebuild)."""
        ...

    async def claim(self, day: date, instance_id: str) -> bool:
        """Record the scheduled run of ``day``; ``False`` when it already ran."""
        ...

    async def mark_rebuilt(self, day: date, instance_id: str) -> None:
        """Record a rebuild of ``day`` (one more run)."""
        ...

    async def done_since(self, since: date) -> list[date]:
        """The days rolled up from ``since`` on."""
        ...


class Snapshots(Protocol):
    """Each closed day's frozen ranking."""

    async def save(self, day: date, ranked: Sequence[RankedProduct]) -> None:
        """Replace the snapshot of ``day`` (and note its size in the day's run)."""
        ...

    async def get(self, day: date) -> list[RankedProduct]:
        """The snapshot of ``day``, best first."""
        ...


class UnitOfWork(Protocol):
    """``async with uow:`` one transaction (rolled back unless committed) or, in single-statement
    mode, a connection without BEGIN/COMMIT (reads, and changes that are one statement).

    A transaction of the consumer pipeline (``shared.messaging.pipeline.Transaction``) too."""

    @property
    def inbox(self) -> Inbox: ...

    @property
    def orders(self) -> CountedOrders: ...

    @property
    def sales(self) -> Sales: ...

    @property
    def batch_runs(self) -> BatchRuns: ...

    @property
    def snapshots(self) -> Snapshots: ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Builds a unit of work; ``single_statement=True`` for the read path (no BEGIN/COMMIT)."""

    @property
    def conflicts(self) -> tuple[type[Exception], ...]:
        """The errors of a transaction that lost a race (a deadlock, a serialization failure):
        running it again may succeed."""
        ...

    def __call__(self, *, single_statement: bool = False) -> UnitOfWork: ...
