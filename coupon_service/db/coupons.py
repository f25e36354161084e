"""Coupons and their issue slots in PostgreSQL (the ``CouponRepository`` of ``service.ports``)."""

from __future__ import annotations

from typing import Any

import asyncpg

from coupon_service.domain.errors import CouponAlreadyIssuedError
from coupon_service.domain.model import Claimant, Coupon, CouponTerms, DiscountType, IssuedCoupon

_INSERT = """
INSERT INTO coupons (name, discount_type, discount_value, total_quantity, issue_starts_at,
                     issue_ends_at, valid_days, min_order_amount)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING *
"""
_SLOTS = """
INSERT INTO user_coupons (coupon_id, slot_no)
SELECT $1, n FROM generate_series(1, $2) AS n
"""
# Take a free copy. SKIP LOCKED lets concurrent requests lock different rows; the blocking form
# is the fallback that waits for in-flight claims, so "none left" is only said when it is true.
_CLAIM = """
UPDATE user_coupons SET user_id = $2, issued_at = now(), expires_at = now() + make_interval(days => $3)
WHERE user_coupon_id = (
    SELECT user_coupon_id FROM user_coupons
    WHERE coupon_id = $1 AND user_id IS NULL
    ORDER BY slot_no LIMIT 1 FOR UPDATE {skip}
) AND user_id IS NULL
RETURNING user_coupon_id, coupon_id, user_id, status, issued_at, expires_at
"""
CLAIM_SKIP_LOCKED = _CLAIM.format(skip="SKIP LOCKED")
CLAIM_WAITING = _CLAIM.format(skip="")


def coupon_from_row(row: Any) -> Coupon:
    terms = CouponTerms(
        name=row["name"],
        discount_type=DiscountType(row["discount_type"]),
        discount_value=row["discount_value"],
        total_quantity=row["total_quantity"],
        valid_days=row["valid_days"],
        min_order_amount=row["min_order_amount"],
        issue_starts_at=row["issue_starts_at"],
        issue_ends_at=row["issue_ends_at"],
    )
    return Coupon(row["coupon_id"], terms, row["created_at"])


# Many issues of one coupon to distinct users in one statement (and one commit), for the batched
# path. Per user it reports whether the user is known (the projection), whether they already held
# a copy (the statement's snapshot) and the copy it gave them. Free rows are locked in slot order
# and never waited for (SKIP LOCKED; a locked row was re-checked to be free, so the UPDATE needs no
# condition of its own): fresh users are paired with the locked rows in arrival order, and those
# left over are reported without a copy. ``more_free`` says whether any free row
# of the snapshot is left that this statement did not take (free or claimed by a transaction
# still in flight): when it is false every copy is taken for good, so "sold out" is true. A user
# whose copy another transaction commits meanwhile fails the whole statement on the unique index.
ISSUE_MANY = """
WITH req AS MATERIALIZED (
    SELECT r.user_id, r.ord,
           EXISTS (SELECT 1 FROM known_users k WHERE k.user_id = r.user_id) AS known,
           EXISTS (SELECT 1 FROM user_coupons h WHERE h.coupon_id = $1 AND h.user_id = r.user_id) AS held
    FROM unnest($2::bigint[]) WITH ORDINALITY AS r(user_id, ord)
), fresh AS MATERIALIZED (
    SELECT user_id, row_number() OVER (ORDER BY ord) AS n FROM req WHERE known AND NOT held
), free AS MATERIALIZED (
    SELECT user_coupon_id, row_number() OVER (ORDER BY slot_no) AS n FROM (
        SELECT user_coupon_id, slot_no FROM user_coupons
        WHERE coupon_id = $1 AND user_id IS NULL
        ORDER BY slot_no LIMIT (SELECT count(*) FROM fresh)
        FOR UPDATE SKIP LOCKED
    ) s
), upd AS (
    UPDATE user_coupons uc SET user_id = f.user_id, issued_at = now(),
                               expires_at = now() + make_interval(days => $3)
    FROM free s JOIN fresh f USING (n)
    WHERE uc.user_coupon_id = s.user_coupon_id
    RETURNING uc.user_coupon_id, uc.coupon_id, uc.user_id, uc.status, uc.issued_at, uc.expires_at
)
SELECT r.user_id, r.known, r.held, u.user_coupon_id, u.coupon_id, u.status, u.issued_at, u.expires_at,
       EXISTS (SELECT 1 FROM user_coupons c WHERE c.coupon_id = $1 AND c.user_id IS NULL
               AND c.user_coupon_id NOT IN (SELECT user_coupon_id FROM free)) AS more_free
FROM req r LEFT JOIN upd u USING (user_id)
"""

# The answer for users of a coupon known to be sold out: who is known, who holds a copy.
WHO_HOLDS = """
SELECT r.user_id,
       EXISTS (SELECT 1 FROM known_users k WHERE k.user_id = r.user_id) AS known,
       EXISTS (SELECT 1 FROM user_coupons h WHERE h.coupon_id = $1 AND h.user_id = r.user_id) AS held
FROM unnest($2::bigint[]) AS r(user_id)
"""


def _issued(row: Any) -> IssuedCoupon:
    return IssuedCoupon(
        user_coupon_id=row["user_coupon_id"],
        coupon_id=row["coupon_id"],
        user_id=row["user_id"],
        status=row["status"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
    )


class PgCoupons:
    """Coupons and their copies on one connection (a unit of work's)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, terms: CouponTerms) -> Coupon:
        """Store a coupon and one free slot per copy (two statements: call inside a transaction)."""
        row = await self._conn.fetchrow(
            _INSERT,
            terms.name,
            terms.discount_type.value,
            terms.discount_value,
            terms.total_quantity,
            terms.issue_starts_at,
            terms.issue_ends_at,
            terms.valid_days,
            terms.min_order_amount,
        )
        await self._conn.execute(_SLOTS, row["coupon_id"], terms.total_quantity)
        return coupon_from_row(row)

    async def get(self, coupon_id: int) -> Coupon | None:
        row = await self._conn.fetchrow("SELECT * FROM coupons WHERE coupon_id = $1", coupon_id)
        return coupon_from_row(row) if row else None

    async def issued_count(self, coupon_id: int) -> int:
        count: int = await self._conn.fetchval(
            "SELECT count(*) FROM user_coupons WHERE coupon_id = $1 AND user_id IS NOT NULL", coupon_id
        )
        return count

    async def claim(self, coupon_id: int, user_id: int, valid_days: int, *, wait: bool) -> IssuedCoupon | None:
        """Issue a free copy to the user; ``None`` when none is free. A second copy of the user is a
        unique violation: ``CouponAlreadyIssuedError``."""
        try:
            row = await self._conn.fetchrow(
                CLAIM_WAITING if wait else CLAIM_SKIP_LOCKED, coupon_id, user_id, valid_days
            )
        except asyncpg.UniqueViolationError:
            raise CouponAlreadyIssuedError(f"user {user_id} already holds coupon {coupon_id}") from None
        return _issued(row) if row is not None else None

    async def holds(self, coupon_id: int, user_id: int) -> bool:
        held: bool = await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM user_coupons WHERE coupon_id = $1 AND user_id = $2)", coupon_id, user_id
        )
        return held

    async def issue_many(self, coupon_id: int, user_ids: list[int], valid_days: int) -> list[Claimant] | None:
        """:data:`ISSUE_MANY` for distinct ``user_ids`` (one statement): one claimant per user.
        ``None`` when one of them got a copy from another transaction meanwhile (unique index) or
        the statement deadlocked: then nothing was issued."""
        try:
            rows = await self._conn.fetch(ISSUE_MANY, coupon_id, user_ids, valid_days)
        except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError):
            return None
        return [
            Claimant(
                user_id=row["user_id"],
                known=row["known"],
                held=row["held"],
                copy=_issued(row) if row["user_coupon_id"] is not None else None,
                more_free=row["more_free"],
            )
            for row in rows
        ]

    async def who_holds(self, coupon_id: int, user_ids: list[int]) -> list[Claimant]:
        """:data:`WHO_HOLDS` (one statement): per user, ``known`` and ``held``."""
        rows = await self._conn.fetch(WHO_HOLDS, coupon_id, user_ids)
        return [Claimant(user_id=row["user_id"], known=row["known"], held=row["held"]) for row in rows]
