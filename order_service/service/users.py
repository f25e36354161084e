"""Known users: the ``user.registered`` projection with a fallback lookup for unseen ids.

Users are never deleted, so a positive answer is also cached in the process (bounded), which
spares the projection query on most orders.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from order_service.domain.commands import RememberUser
from order_service.domain.errors import UserNotFoundError
from order_service.service.ports import KnownUserRows, UnitOfWork, UserRegistry


class KnownUsers:
    """A bounded in-process set of user ids known to exist."""

    def __init__(self, size: int = 100_000) -> None:
        self._ids: OrderedDict[int, None] = OrderedDict()
        self._size = size

    def __contains__(self, user_id: int) -> bool:
        return user_id in self._ids

    def add(self, user_id: int) -> None:
        self._ids[user_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)


async def ensure_user(
    statement: Callable[[], UnitOfWork], registry: UserRegistry, user_id: int, cache: KnownUsers
) -> None:
    """Raise :class:`UserNotFoundError` unless the user exists; remember a positive answer. No
    connection is held while the registry is asked."""
    if user_id in cache:
        return
    async with statement() as uow:
        known = await uow.users.known(user_id)
    if not known:
        found = await registry.find(user_id)
        if found is None:
            raise UserNotFoundError(f"user {user_id} does not exist")
        async with statement() as uow:
            await uow.users.remember(user_id, *found)
    cache.add(user_id)


async def remember_user(users: KnownUserRows, cmd: RememberUser) -> None:
    """Handler of ``user.registered``, inside the consumer's transaction."""
    await users.remember(cmd.user_id, cmd.name, cmd.created_at)
