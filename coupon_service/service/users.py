"""Whether a user exists, as the coupon use cases ask it: the shared known-users lookup
(``shared.known_users.KnownUsers``: cache, projection, then balance_service) with coupon's errors."""

from __future__ import annotations

from coupon_service.domain.errors import UserNotFoundError
from shared.known_users import KnownUsers

__all__ = ["KnownUsers", "require_user"]


async def require_user(users: KnownUsers, user_id: int) -> None:
    """Return when the user exists; :class:`UserNotFoundError` otherwise (and
    ``UserDirectoryUnavailableError`` when balance_service cannot be asked)."""
    if not await users.exists(user_id):
        raise UserNotFoundError(f"user {user_id} does not exist")
