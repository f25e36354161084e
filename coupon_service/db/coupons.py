"""Coupons and their issue slots in PostgreSQL."""

from __future__ import annotations

from typing import Any

import asyncpg

from coupon_service.domain.model import Coupon, CouponTerms, DiscountType

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
        name=row["name"], discount_type=DiscountType(row["discount_type"]),
        discount_value=row["discount_value"], total_quantity=row["total_quantity"],
        valid_days=row["valid_days"], min_order_amount=row["min_order_amount"],
        issue_starts_at=row["issue_starts_at"], issue_ends_at=row["issue_ends_at"],
    )
    return Coupon(row["coupon_id"], terms, row["created_at"])


async def insert_coupon(conn: asyncpg.Connection, terms: CouponTerms) -> Coupon:
    """Store a coupon and one free slot per copy (call inside a transaction)."""
    row = await conn.fetchrow(
        _INSERT, terms.name, terms.discount_type.value, terms.discount_value, terms.total_quantity,
        terms.issue_starts_at, terms.issue_ends_at, terms.valid_days, terms.min_order_amount,
    )
    await conn.execute(_SLOTS, row["coupon_id"], terms.total_quantity)
    return coupon_from_row(row)


async def get_coupon(conn: asyncpg.Connection | asyncpg.Pool, coupon_id: int) -> Coupon | None:
    row = await conn.fetchrow("SELECT * FROM coupons WHERE coupon_id = $1", coupon_id)
    return coupon_from_row(row) if row else None


async def issued_count(conn: asyncpg.Connection | asyncpg.Pool, coupon_id: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM user_coupons WHERE coupon_id = $1 AND user_id IS NOT NULL", coupon_id
    )


async def claim_slot(
    conn: asyncpg.Connection | asyncpg.Pool, coupon_id: int, user_id: int, valid_days: int, *, wait: bool
) -> asyncpg.Record | None:
    """Issue a free copy to the user; ``None`` when none is free. A second copy raises UniqueViolation."""
    return await conn.fetchrow(CLAIM_WAITING if wait else CLAIM_SKIP_LOCKED, coupon_id, user_id, valid_days)


async def holds(conn: asyncpg.Connection | asyncpg.Pool, coupon_id: int, user_id: int) -> bool:
    return await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM user_coupons WHERE coupon_id = $1 AND user_id = $2)", coupon_id, user_id
    )
