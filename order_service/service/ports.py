"""What the handlers need: repositories and the unit of work that exposes them (PostgreSQL adapters
in ``order_service.db``, in-memory ones in ``tests/order_service/fakes.py``; the known users are the
shared projection's), the catalog (HTTP adapter in ``order_service.clients``) and the outcome waiter
(``db.outcomes``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from order_service.domain.history import Entry
from order_service.domain.order import Order, OrderLine, Product
from order_service.domain.saga import SagaState
from shared.known_users import KnownUserRepository
from shared.messaging.envelope import Outgoing
from shared.messaging.pipeline import Inbox

Times = dict[str, tuple[datetime, datetime]]
"""Each locked saga's (started_at, updated_at), for the flow metrics."""
Row = Mapping[str, Any]
"""A row of the admin saga view (columns by name)."""


class Orders(Protocol):
    async def add(
        self, order: Order, saga: SagaState, messages: Sequence[Outgoing], history: Sequence[Entry] = ()
    ) -> None:
        """The order, its lines, saga, first commands and history: one statement."""

    async def add_once(
        self,
        order: Order,
        saga: SagaState,
        messages: Sequence[Outgoing],
        key: str,
        request_hash: str,
        history: Sequence[Entry] = (),
    ) -> bool:
        """:meth:`add` and the user's Idempotency-Key in one statement; ``False`` (nothing written)
        when the key was taken, by an earlier request or a racing one that committed meanwhile."""

    async def get(self, order_id: str) -> Order | None: ...

    async def of_user(self, user_id: int, limit: int, after: tuple[datetime, str] | None) -> list[Order]:
        """Newest first, after the (created_at, order_id) ``after``."""

    async def lines(self, order_ids: Sequence[str]) -> dict[str, list[OrderLine]]: ...


class IdempotencyKeys(Protocol):
    async def find(self, user_id: int, key: str) -> tuple[str, str] | None:
        """``(request_hash, order_id)`` of the user's key (keys are scoped to the user)."""

    async def expire(self, hours: int) -> None:
        """Forget the keys older than ``hours``."""


class Sagas(Protocol):
    async def claim_and_lock(
        self,
        consumer: str,
        message_ids: Sequence[object],
        order_ids: Sequence[str],
        completing_step: str,
        times: Times | None = None,
    ) -> tuple[set[object], dict[str, SagaState], dict[str, list[OrderLine]]]:
        """Record ``message_ids`` in the consumer's inbox and lock the sagas of ``order_ids``, in one
        statement: the new ids, the sagas, and the lines of the orders in ``completing_step``."""

    async def lock_due(self, limit: int, times: Times | None = None) -> tuple[datetime | None, list[SagaState]]:
        """Overdue sagas nobody else holds, and the database's ``now()`` they were compared with."""

    async def write(
        self,
        states: Sequence[SagaState],
        finished: Sequence[tuple[SagaState, str, str | None]],
        at: datetime,
        messages: Sequence[Outgoing],
        history: Sequence[Entry] = (),
    ) -> None:
        """Save sagas, finish orders (notifying their waiters), queue messages, add history: one
        statement."""

    async def view(self, order_id: str) -> tuple[Row, Sequence[Row]] | None:
        """The saga row of an order and its history, oldest first."""

    async def unfinished(
        self, *, step: str | None, started_before: datetime | None, limit: int, after: tuple[datetime, str] | None
    ) -> Sequence[Row]:
        """Sagas not DONE nor FAILED, oldest first, after the (started_at, order_id) ``after``."""


class UnitOfWork(Protocol):
    """``async with uow: ... await uow.commit()``; the repositories work on its connection."""

    @property
    def orders(self) -> Orders: ...

    @property
    def keys(self) -> IdempotencyKeys: ...

    @property
    def sagas(self) -> Sagas: ...

    @property
    def users(self) -> KnownUserRepository: ...

    @property
    def inbox(self) -> Inbox:
        """The consumer inbox on this unit of work (claimed by the consumer pipeline)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def commit(self) -> None: ...


class Catalog(Protocol):
    async def lookup(self, product_ids: list[int]) -> dict[int, Product]:
        """The products that exist among ``product_ids`` (one call for all of them)."""


Notice = dict[str, Any] | None
"""The outcome an order's notice carried, or ``None`` when it named the order only."""


class OutcomeWaiter(Protocol):
    """Wakes the requests waiting for an order's outcome, whichever instance finishes it.
    ``fut = subscribe(id)`` before the order can finish, then ``await wait(id, fut, timeout)``."""

    def subscribe(self, order_id: str) -> asyncio.Future[Notice]: ...

    def cancel(self, order_id: str, fut: asyncio.Future[Notice]) -> None: ...

    async def wait(
        self,
        order_id: str,
        fut: asyncio.Future[Notice],
        timeout: float,
        *,
        read_first: bool = True,
        created: Order | None = None,
    ) -> Order | None:
        """The order once finished, or as it is when ``timeout`` passes; ``created``: the order as
        this request stored it, finished from the notice without a read when it carries one."""
