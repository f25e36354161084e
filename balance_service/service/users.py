"""Use cases of the user registry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from balance_service.db import users as users_db
from balance_service.domain.commands import RegisterUser
from balance_service.domain.errors import UserNotFoundError
from balance_service.service.unit_of_work import SingleStatement, UnitOfWork
from shared.events.users import UserRegistered


@dataclass(frozen=True)
class User:
    user_id: int
    name: str
    created_at: datetime


async def register_user(pool: asyncpg.Pool, cmd: RegisterUser, *, topic: str) -> User:
    """Create the user with a balance of 0 and announce it on ``topic`` (through the outbox)."""
    async with UnitOfWork(pool) as uow:
        user = User(**dict(await users_db.insert_user(uow.conn, cmd.name)))
        uow.publish(topic, user.user_id, UserRegistered(**user.__dict__))
        await uow.commit()
    return user


async def get_user(pool: asyncpg.Pool, user_id: int) -> User:
    """The user, or :class:`UserNotFoundError`."""
    async with SingleStatement(pool) as uow:
        row = await users_db.get_user(uow.conn, user_id)
    if row is None:
        raise UserNotFoundError(user_id)
    return User(**dict(row))
