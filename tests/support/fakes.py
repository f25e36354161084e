"""In-memory adapters of the platform: a fake database, its inbox and unit of work.

A :class:`FakeDatabase` holds the committed state (inbox, outbox, and whatever tables a service's
fake repositories keep in ``state.tables``). A :class:`FakeUnitOfWork` works on a copy of it and
swaps the copy in on commit, so a unit of work that is left without committing changes nothing:
the same all-or-nothing the real transaction gives (without concurrency: one at a time).

A service's fake unit of work subclasses :class:`FakeUnitOfWork` and builds its fake repositories
on the working state in :meth:`FakeUnitOfWork.bind`, as the real one does on its connection
(:meth:`shared.db.uow.UnitOfWork.bind`)::

    class FakeBalanceUnitOfWork(FakeUnitOfWork):
        def bind(self, state: FakeState) -> None:
            self.payments = FakePayments(state.tables.setdefault("payments", {}))
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from shared.context import current_request_id
from shared.messaging.envelope import Message, Outgoing

R = TypeVar("R")


@dataclass
class FakeState:
    inbox: set[tuple[str, uuid.UUID]] = field(default_factory=set)
    outbox: list[Outgoing] = field(default_factory=list)
    tables: dict[str, Any] = field(default_factory=dict)


@dataclass
class FakeDatabase:
    """The committed state, and counts of what happened to it."""

    state: FakeState = field(default_factory=FakeState)
    transactions: int = 0
    commits: int = 0

    def claimed(self, consumer: str) -> set[uuid.UUID]:
        return {mid for c, mid in self.state.inbox if c == consumer}


class FakeInbox:
    """The inbox on a unit of work's working state (:class:`shared.db.inbox.PgInbox`)."""

    def __init__(self, claims: set[tuple[str, uuid.UUID]]) -> None:
        self._claims = claims
        self.calls = 0

    async def claim_new(self, consumer: str, message_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        self.calls += 1
        new = set()
        for mid in dict.fromkeys(message_ids):
            if (consumer, mid) not in self._claims:
                self._claims.add((consumer, mid))
                new.add(mid)
        return new


class FakeUnitOfWork(Generic[R]):
    """``async with FakeUnitOfWork(db) as uow: ...; await uow.commit()`` (see the module docstring).

    ``repositories``, like the real unit of work's factory, builds ``uow.repos`` (on the working
    state instead of a connection). ``single_statement=True`` stands for
    :class:`shared.db.uow.SingleStatement`: what it did is kept when it closes, committed or not
    (each statement commits on its own), and it cannot publish."""

    def __init__(
        self,
        db: FakeDatabase,
        *,
        repositories: Callable[[FakeState], R] | None = None,
        single_statement: bool = False,
    ) -> None:
        self.db = db
        self.single_statement = single_statement
        self._factory = repositories
        self._state: FakeState | None = None
        self._repos: R | None = None
        self.inbox = FakeInbox(set())
        self.committed = False

    @property
    def state(self) -> FakeState:
        if self._state is None:
            raise RuntimeError("the unit of work is not open")
        return self._state

    @property
    def repos(self) -> R:
        if self._state is None:
            raise RuntimeError("the unit of work is not open")
        return self._repos  # type: ignore[return-value]

    def bind(self, state: FakeState) -> None:
        """A subclass builds its fake repositories on ``state`` here."""

    async def __aenter__(self) -> Self:
        self.db.transactions += 1
        self._state = copy.deepcopy(self.db.state)
        self.inbox = FakeInbox(self._state.inbox)
        if self._factory is not None:
            self._repos = self._factory(self._state)
        self.bind(self._state)
        self.committed = False
        return self

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        if self.single_statement:
            raise RuntimeError("a single-statement unit of work cannot publish: open a transaction")
        self.state.outbox.append(Outgoing(topic, str(key), message, request_id or current_request_id()))

    async def commit(self) -> None:
        self.db.state = self.state
        self.db.commits += 1
        self.committed = True

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.single_statement and self._state is not None and not self.committed:
            await self.commit()
        self._state = None
        self._repos = None


class FakeKnownUsers:
    """``known_users`` in memory (:class:`shared.db.known_users.PgKnownUsers`)."""

    def __init__(self, state: FakeState) -> None:
        self._rows: dict[int, tuple[str, Any]] = state.tables.setdefault("known_users", {})

    async def is_known(self, user_id: int) -> bool:
        return user_id in self._rows

    async def add(self, users: Iterable[tuple[int, str, Any]]) -> None:
        for user_id, name, created_at in users:
            self._rows.setdefault(user_id, (name, created_at))


class FakeUserDirectory:
    """balance_service's user lookup in memory (:class:`shared.clients.balance.BalanceClient`);
    ``down`` makes it raise ``error``, as the real one does when balance cannot answer."""

    def __init__(
        self, users: dict[int, tuple[str, Any]] | None = None, error: type[Exception] = ConnectionError
    ) -> None:
        self.users = dict(users or {})
        self.asked: list[int] = []
        self.down = False
        self._error = error

    async def find(self, user_id: int) -> tuple[str, Any] | None:
        self.asked.append(user_id)
        if self.down:
            raise self._error("the user lookup is unreachable")
        return self.users.get(user_id)
