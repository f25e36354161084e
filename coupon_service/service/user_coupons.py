"""A user's coupons, usable ones by default, by keyset pages (``GET /users/{id}/coupons``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from coupon_service.domain.commands import UserCoupons
from coupon_service.domain.model import OwnedCoupon, user_coupon_status
from coupon_service.service.ports import UnitOfWorkFactory
from coupon_service.service.users import KnownUsers, require_user


@dataclass(frozen=True)
class Page:
    """The coupons (status derived: ``EXPIRED``) and the keyset position after the last one when
    there are more."""

    items: list[OwnedCoupon]
    after: tuple[datetime, int] | None


async def user_coupons(single: UnitOfWorkFactory, users: KnownUsers, cmd: UserCoupons) -> Page:
    """The user's coupons; ``show_all`` adds reserved, used and expired ones."""
    await require_user(users, cmd.user_id)
    async with single() as uow:
        rows = await uow.user_coupons.list_owned(
            cmd.user_id, usable_only=not cmd.show_all, after=cmd.after, limit=cmd.limit + 1
        )
    items = [replace(row, status=user_coupon_status(row.status, row.expires_at, cmd.now).value) for row in rows]
    last = items[cmd.limit - 1] if len(items) > cmd.limit else None
    return Page(items[: cmd.limit], (last.issued_at, last.user_coupon_id) if last else None)
