"""Reading a user's coupons, newest issue first, by keyset pages."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from coupon_service.domain.model import OwnedCoupon

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


class PgUserCoupons:
    """The coupons users own, on one connection (a unit of work's)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def list_owned(
        self, user_id: int, *, usable_only: bool, after: tuple[datetime, int] | None, limit: int
    ) -> list[OwnedCoupon]:
        """Up to ``limit`` coupons of the user after the keyset position ``after`` (one statement)."""
        issued_at, uc_id = after or (None, None)
        rows = await self._conn.fetch(_LIST, user_id, usable_only, issued_at, uc_id, limit)
        return [OwnedCoupon(**dict(row)) for row in rows]
