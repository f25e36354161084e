"""Use cases of the user registry: ``create_user`` (POST /users) and ``get_user``."""

from __future__ import annotations

from balance_service.domain.commands import CreateUser
from balance_service.domain.errors import UserNotFoundError
from balance_service.domain.model import User
from balance_service.service.ports import UnitOfWorkFactory
from shared.events.users import UserRegistered


async def create_user(uow: UnitOfWorkFactory, cmd: CreateUser, *, topic: str) -> User:
    """Create the user with a balance of 0 and announce it on ``topic`` (through the outbox)."""
    async with uow() as tx:
        user = await tx.users.add(cmd.name)
        tx.publish(
            topic, user.user_id, UserRegistered(user_id=user.user_id, name=user.name, created_at=user.created_at)
        )
        await tx.commit()
    return user


async def get_user(uow: UnitOfWorkFactory, user_id: int) -> User:
    """The user, or :class:`UserNotFoundError`."""
    async with uow(single_statement=True) as single:
        user = await single.users.get(user_id)
    if user is None:
        raise UserNotFoundError(user_id)
    return user
