"""Whether a user exists: the shared known-users projection (``shared.known_users``: the in-process
cache, the ``known_users`` table, then balance_service's user lookup)."""

from __future__ import annotations

from order_service.domain.errors import UserNotFoundError
from shared.known_users import KnownUsers


async def ensure_user(users: KnownUsers, user_id: int) -> None:
    """Raise :class:`UserNotFoundError` unless the user exists (``UpstreamUnavailableError`` when
    balance_service had to be asked and could not answer)."""
    if not await users.exists(user_id):
        raise UserNotFoundError(f"user {user_id} does not exist")
