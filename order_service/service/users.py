"""Known users: the ``user.registered`` projection with a fallback lookup for unseen ids."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from order_service.db import repository as repo
from order_service.domain.errors import UserNotFoundError
from order_service.service.ports import UserRegistry
from shared.db.uow import UnitOfWork


async def ensure_user(pool: asyncpg.Pool, registry: UserRegistry, user_id: int) -> None:
    """Raise :class:`UserNotFoundError` unless the user exists; cache a positive answer."""
    if await repo.user_known(pool, user_id):
        return
    found = await registry.find(user_id)
    if found is None:
        raise UserNotFoundError(f"user {user_id} does not exist")
    await repo.remember_user(pool, user_id, *found)


async def user_registered(uow: UnitOfWork, user_id: int, name: str, created_at: datetime) -> None:
    """Handler of ``UserRegistered``."""
    await repo.remember_user(uow.conn, user_id, name, created_at)
