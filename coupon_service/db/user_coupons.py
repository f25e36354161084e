"""Reading a user's coupons, newest issue first, by keyset pages."""

from __future__ import annotations

from datetime import datetime

import asyncpg

_LIST = """
SELECT uc.user_coupon_id, uc.coupon_id, c.name, c.discount_type, c.discount_value, uc.status,
       uc.issued_at, uc.expires_at, uc.used_at
FROM user_coupons uc JOIN coupons c USING (coupon_id)
WHERE uc.user_id = $1
  AND ($2::bool = false OR (uc.status = 'AVAILABLE' AND uc.expires_at > now()))
  AND ($3::timestamptz IS NULL OR (uc.issued_at, uc.user_coupon_id) < ($3, $4))
ORDER BY uc.issued_at DESC, uc.user_coupon_id DESC
LIMIT $5
"""


async def list_owned(
    conn: asyncpg.Connection | asyncpg.Pool,
    user_id: int,
    *,
    usable_only: bool,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Up to ``limit`` coupons of the user after the keyset position ``after``."""
    issued_at, uc_id = after or (None, None)
    return await conn.fetch(_LIST, user_id, usable_only, issued_at, uc_id, limit)
