"""Whether a user exists: the known-users projection, else one question to balance_service."""

from __future__ import annotations

from coupon_service.domain.commands import RegisterUser
from coupon_service.domain.errors import UserNotFoundError
from coupon_service.service.ports import UnitOfWork, UnitOfWorkFactory, UserDirectory

MAX_CACHED = 1_000_000


class KnownUsers:
    """Positive answers only: users are never deleted, so a known id stays known.

    The in-process set is a cache of the ``known_users`` table, never the source of truth. Each
    statement runs alone (``single``: no transaction), and no connection is held while balance is asked.
    """

    def __init__(self, single: UnitOfWorkFactory, directory: UserDirectory) -> None:
        self._single = single
        self._directory = directory
        self._seen: set[int] = set()

    async def require(self, user_id: int) -> None:
        """Return when the user exists; raise :class:`UserNotFoundError` otherwise."""
        if user_id in self._seen:
            return
        async with self._single() as uow:
            known = await uow.users.is_known(user_id)
        if not known:
            found = await self._directory.find(user_id)
            if found is None:
                raise UserNotFoundError(f"user {user_id} does not exist")
            async with self._single() as uow:
                await uow.users.add([(user_id, *found)])
        self._remember(user_id)

    def remember(self, user_ids: list[int]) -> None:
        """Users the ``known_users`` table was seen to hold."""
        for user_id in user_ids:
            self._remember(user_id)

    def _remember(self, user_id: int) -> None:
        if len(self._seen) >= MAX_CACHED:
            self._seen.clear()
        self._seen.add(user_id)


async def register_user(uow: UnitOfWork, cmd: RegisterUser) -> None:
    """Apply a ``user.registered`` event to the projection (idempotent), in the caller's transaction."""
    await uow.users.add([(cmd.user_id, cmd.name, cmd.created_at)])
