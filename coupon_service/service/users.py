"""Whether a user exists: the known-users projection, else one question to balance_service."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import asyncpg

from coupon_service.db import users as repo
from coupon_service.domain.errors import UserNotFoundError

MAX_CACHED = 1_000_000


class UserDirectory(Protocol):
    """Port to the owner of users (balance_service)."""

    async def find(self, user_id: int) -> tuple[str, datetime] | None:
        """``(name, created_at)`` of an existing user, ``None`` when there is none."""


class KnownUsers:
    """Positive answers only: users are never deleted, so a known id stays known.

    The in-process set is a cache of the ``known_users`` table, never the source of truth.
    """

    def __init__(self, pool: asyncpg.Pool, directory: UserDirectory) -> None:
        self._pool = pool
        self._directory = directory
        self._seen: set[int] = set()

    async def require(self, user_id: int) -> None:
        """Return when the user exists; raise :class:`UserNotFoundError` otherwise."""
        if user_id in self._seen:
            return
        if not await repo.is_known(self._pool, user_id):
            found = await self._directory.find(user_id)
            if found is None:
                raise UserNotFoundError(f"user {user_id} does not exist")
            await repo.add_known(self._pool, [(user_id, *found)])
        self._remember(user_id)

    def remember(self, user_ids: list[int]) -> None:
        """Users the ``known_users`` table was seen to hold."""
        for user_id in user_ids:
            self._remember(user_id)

    def _remember(self, user_id: int) -> None:
        if len(self._seen) >= MAX_CACHED:
            self._seen.clear()
        self._seen.add(user_id)


async def project_registered(conn: asyncpg.Connection, user_id: int, name: str, created_at: datetime) -> None:
    """Apply a ``UserRegistered`` event to the projection (idempotent)."""
    await repo.add_known(conn, [(user_id, name, created_at)])
