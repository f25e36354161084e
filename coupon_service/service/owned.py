"""A user's coupons, usable ones by default, by keyset pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from coupon_service.db import user_coupons as repo
from coupon_service.domain.model import user_coupon_status
from coupon_service.service.users import KnownUsers
from shared.web.cursors import ID, MOMENT, Cursor

OWNED = Cursor("c", MOMENT, ID)
"""(issued_at, user_coupon_id) of the last coupon of the previous page."""


class BadCursorError(ValueError):
    """The cursor was not made by this service."""


def encode_cursor(issued_at: datetime, user_coupon_id: int) -> str:
    return OWNED.encode(issued_at, user_coupon_id)


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        issued_at, user_coupon_id = OWNED.decode(cursor)
    except ValueError:
        raise BadCursorError("malformed cursor") from None
    return issued_at, user_coupon_id


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


async def list_owned(
    pool: asyncpg.Pool,
    users: KnownUsers,
    user_id: int,
    *,
    show_all: bool,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> Page:
    """The user's coupons; ``show_all`` adds reserved, used and expired ones."""
    after = decode_cursor(cursor) if cursor else None
    await users.require(user_id)
    rows = await repo.list_owned(pool, user_id, usable_only=not show_all, after=after, limit=limit + 1)
    items = [dict(row) for row in rows[:limit]]
    for item in items:
        item["status"] = user_coupon_status(item["status"], item["expires_at"], now).value
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(items, encode_cursor(last["issued_at"], last["user_coupon_id"]) if last else None)
