"""Known users: the ``user.registered`` projection with a fallback lookup for unseen ids.

Users are never deleted, so a positive answer is also cached in the process (bounded), which
spares the projection query on most orders.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

import asyncpg

from order_service.db import repository as repo
from order_service.domain.errors import UserNotFoundError
from order_service.service.ports import UserRegistry
from shared.db.uow import UnitOfWork


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


async def ensure_user(pool: asyncpg.Pool, registry: UserRegistry, user_id: int, cache: KnownUsers) -> None:
    """Raise :class:`UserNotFoundError` unless the user exists; remember a positive answer."""
    if user_id in cache:
        return
    if not await repo.user_known(pool, user_id):
        found = await registry.find(user_id)
        if found is None:
            raise UserNotFoundError(f"user {user_id} does not exist")
        await repo.remember_user(pool, user_id, *found)
    cache.add(user_id)


async def user_registered(uow: UnitOfWork, user_id: int, name: str, created_at: datetime) -> None:
    """Handler of ``UserRegistered``."""
    await repo.remember_user(uow.conn, user_id, name, created_at)
