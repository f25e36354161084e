"""Order coupon records and the user-coupon changes of the saga step."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from coupon_service.db.coupons import coupon_from_row
from coupon_service.domain.saga import Holding, OrderCoupon, OrderCouponState
from shared.db.errors import unique_violation_on

record_raced = unique_violation_on("order_coupons_pkey")
"""Another transaction recorded one of the batch's orders after it read them (the key guards it):
the batch is applied again from a fresh read, which answers from that record."""


class PgOrderCoupons:
    """Order coupon records and the user coupons they take, on one connection (a unit of work's)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock_record(self, order_id: str) -> OrderCoupon | None:
        row = await self._conn.fetchrow("SELECT * FROM order_coupons WHERE order_id = $1 FOR UPDATE", order_id)
        if row is None:
            return None
        return OrderCoupon(
            row["order_id"],
            OrderCouponState(row["state"]),
            row["user_coupon_id"],
            row["discount_amount"],
            row["failure_code"],
            row["failure_reason"] or "",
        )

    async def insert_record(self, record: OrderCoupon) -> None:
        """A new order's record. A plain INSERT: when another transaction recorded the order after our
        read (two handlers of one order, e.g. around a rebalance), the primary key fails this one
        (``order_coupons_pkey``) and the batch is applied again from a fresh read."""
        await self._conn.execute(
            """
            INSERT INTO order_coupons (order_id, state, user_coupon_id, discount_amount, failure_code, failure_reason)
            VALUES ($1, $2, $3, $4, $5, $6)
            """,
            record.order_id,
            record.state.value,
            record.user_coupon_id,
            record.discount_amount,
            record.failure_code,
            record.failure_reason,
        )

    async def update_state(self, record: OrderCoupon) -> None:
        """The new state of a record read and locked by :func:`lock_record` in this transaction."""
        await self._conn.execute(
            "UPDATE order_coupons SET state = $2, updated_at = now() WHERE order_id = $1",
            record.order_id,
            record.state.value,
        )

    async def lock_holding(self, user_coupon_id: int) -> Holding | None:
        """The user coupon with its terms, locked against a concurrent reservation."""
        row = await self._conn.fetchrow(
            """
            SELECT uc.user_coupon_id, uc.user_id, uc.status, uc.expires_at, c.*
            FROM user_coupons uc JOIN coupons c USING (coupon_id)
            WHERE uc.user_coupon_id = $1 FOR UPDATE OF uc
            """,
            user_coupon_id,
        )
        if row is None:
            return None
        terms = coupon_from_row(row).terms
        return Holding(row["user_coupon_id"], row["user_id"], row["status"], row["expires_at"], terms)

    async def mark_taken(self, user_coupon_id: int, order_id: str, now: datetime) -> bool:
        """Conditional: only an available coupon is taken, and it is ``USED`` by the order at once
        (the design's "use coupon" step; compensation makes it available again)."""
        done = await self._conn.fetchval(
            """
            UPDATE user_coupons SET status = 'USED', used_at = $3, reserved_order_id = $2
            WHERE user_coupon_id = $1 AND status = 'AVAILABLE' RETURNING true
            """,
            user_coupon_id,
            order_id,
            now,
        )
        return bool(done)

    async def mark_used(self, user_coupon_id: int, order_id: str, now: datetime) -> None:
        """A coupon left ``RESERVED`` by a reservation made before coupons were used at once."""
        await self._conn.execute(
            """
            UPDATE user_coupons SET status = 'USED', used_at = $3
            WHERE user_coupon_id = $1 AND status = 'RESERVED' AND reserved_order_id = $2
            """,
            user_coupon_id,
            order_id,
            now,
        )

    async def mark_available(self, user_coupon_id: int, order_id: str) -> None:
        """Give back the coupon the order took (used, or reserved before coupons were used at once)."""
        await self._conn.execute(
            """
            UPDATE user_coupons SET status = 'AVAILABLE', reserved_order_id = NULL, used_at = NULL
            WHERE user_coupon_id = $1 AND status IN ('RESERVED', 'USED') AND reserved_order_id = $2
            """,
            user_coupon_id,
            order_id,
        )
