"""The known-users projection: which users exist, for the services that take a user id (coupon,
order) without owning users (balance_service does).

- The projection: ``user.registered`` -> the service's ``known_users`` table, applied through the
  consumer pipeline (:func:`users_registered`, one statement per batch; :func:`users_handler`
  builds the whole consumer handler).
- The lookup (:class:`KnownUsers`): the in-process cache, else the table, else one question to
  balance_service (a user registered moments ago whose event has not arrived yet); a user balance
  knows is recorded in the table. Users are never deleted, so a positive answer is cached for good
  (bounded) and only positive answers are. No connection is held while balance is asked.

The repository (``uow.users``) is :class:`shared.db.known_users.PgKnownUsers` on PostgreSQL; the
directory is :class:`shared.clients.balance.BalanceClient`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol, TypeVar

from shared.events.users import UserRegistered
from shared.messaging.envelope import Incoming
from shared.messaging.pipeline import BatchHandler, Pipeline, Transaction


class KnownUserRepository(Protocol):
    """The ``known_users`` table."""

    async def is_known(self, user_id: int) -> bool: ...

    async def add(self, users: Iterable[tuple[int, str, datetime]]) -> None:
        """Record ``(user_id, name, created_at)`` rows; users already known stay as they are."""
        ...


class HasUsers(Protocol):
    """A unit of work exposing the known-users repository."""

    @property
    def users(self) -> KnownUserRepository: ...


class UsersTransaction(Transaction, HasUsers, Protocol):
    """A transactional unit of work with ``users`` (what the projection's consumer needs)."""


class UserDirectory(Protocol):
    """Who owns users (balance_service): ``(name, created_at)`` of a user, ``None`` if unknown."""

    async def find(self, user_id: int) -> tuple[str, datetime] | None: ...


U = TypeVar("U", bound=UsersTransaction)


async def users_registered(uow: HasUsers, items: Sequence[Incoming]) -> None:
    """Apply a batch of ``user.registered`` to the projection (idempotent; one statement, none
    without a user). Other messages are ignored."""
    await uow.users.add(
        (m.user_id, m.name, m.created_at) for m in (item.message for item in items) if isinstance(m, UserRegistered)
    )


async def user_registered(uow: HasUsers, item: Incoming) -> None:
    """:func:`users_registered` for one message (a per-record pipeline)."""
    await users_registered(uow, [item])


def users_handler(uow: Callable[[], U], consumer: str) -> BatchHandler:
    """The batch handler of a ``user.registered`` consumer group: the pipeline's inbox, then one
    statement for the batch's new users."""
    return Pipeline(uow, consumer).whole(users_registered)


class KnownUsers:
    """Whether a user exists (see the module docstring).

    ``single`` makes a unit of work for one statement (no transaction needed: each statement stands
    alone); ``size`` bounds the in-process cache (the oldest entries go first).
    """

    def __init__(
        self,
        single: Callable[[], AbstractAsyncContextManager[HasUsers]],
        directory: UserDirectory,
        *,
        size: int = 100_000,
    ) -> None:
        self._single = single
        self._directory = directory
        self._size = size
        self._ids: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, user_id: int) -> bool:
        """Known to this process (no IO)."""
        return user_id in self._ids

    async def exists(self, user_id: int) -> bool:
        """``True`` when the user exists: cached, in the table, or known to the directory (then
        recorded). Raises what the directory raises when it cannot answer."""
        if user_id in self._ids:
            return True
        async with self._single() as uow:
            known = await uow.users.is_known(user_id)
        if not known:
            found = await self._directory.find(user_id)
            if found is None:
                return False
            async with self._single() as uow:
                await uow.users.add([(user_id, *found)])
        self.remember([user_id])
        return True

    def remember(self, user_ids: Iterable[int]) -> None:
        """Users known to exist (seen in the table by another query, say)."""
        for user_id in user_ids:
            self._ids[user_id] = None
            if len(self._ids) > self._size:
                self._ids.popitem(last=False)


__all__ = [
    "HasUsers",
    "KnownUserRepository",
    "KnownUsers",
    "UserDirectory",
    "UsersTransaction",
    "user_registered",
    "users_handler",
    "users_registered",
]
