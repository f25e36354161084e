"""SQL of the saga's balance step: per-order payment records, deduction and refund.

The primary key of ``order_payments`` is the final guard: a deduction and its record are
written by one statement, so a second deduction for the same order fails on the key instead
of taking money twice.
"""

from __future__ import annotations

import asyncpg

from balance_service.domain.payments import Payment, PaymentStatus

_COLUMNS = "order_id, user_id, amount, status, balance_after, failure_code, reason"

_DEDUCT = """
WITH before AS (
    SELECT balance FROM balances WHERE user_id = $2
), upd AS (
    UPDATE balances SET balance = balance - $3, updated_at = now()
    WHERE user_id = $2 AND balance >= $3
    RETURNING balance, updated_at
), pay AS (
    INSERT INTO order_payments (order_id, user_id, amount, status, balance_after)
    SELECT $1, $2, $3, 'DEDUCTED', balance FROM upd
), hist AS (
    INSERT INTO balance_history (user_id, type, amount, balance_after, order_id, created_at)
    SELECT $2, 'USE', $3, balance, $1, updated_at FROM upd WHERE $3 > 0
)
SELECT (SELECT balance FROM before) AS balance_before, (SELECT balance FROM upd) AS balance_after
"""

# Gives back a standing deduction; returns nothing when the order has none.
_REFUND = """
WITH p AS (
    UPDATE order_payments SET status = 'REFUNDED', updated_at = now()
    WHERE order_id = $1 AND status = 'DEDUCTED'
    RETURNING user_id, amount
), upd AS (
    UPDATE balances b SET balance = b.balance + p.amount, updated_at = now()
    FROM p WHERE b.user_id = p.user_id
    RETURNING b.user_id, b.balance, p.amount, b.updated_at
), hist AS (
    INSERT INTO balance_history (user_id, type, amount, balance_after, order_id, created_at)
    SELECT user_id, 'REFUND', amount, balance, $1, updated_at FROM upd WHERE amount > 0
)
SELECT amount FROM p
"""

_INSERT = f"""
INSERT INTO order_payments ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (order_id) DO NOTHING RETURNING true
"""


def _payment(row: asyncpg.Record) -> Payment:
    return Payment(
        row["order_id"], row["user_id"], row["amount"], PaymentStatus(row["status"]),
        row["balance_after"], row["failure_code"], row["reason"],
    )


async def get(conn: asyncpg.Connection, order_id: str, *, lock: bool = False) -> Payment | None:
    sql = f"SELECT {_COLUMNS} FROM order_payments WHERE order_id = $1" + (" FOR UPDATE" if lock else "")
    row = await conn.fetchrow(sql, order_id)
    return _payment(row) if row is not None else None


async def deduct(conn: asyncpg.Connection, order_id: str, user_id: int, amount: int) -> tuple[int | None, int | None]:
    """Take ``amount`` and record it; ``(balance_before, balance_after)``, after ``None`` if refused."""
    row = await conn.fetchrow(_DEDUCT, order_id, user_id, amount)
    assert row is not None
    return row["balance_before"], row["balance_after"]


async def refund(conn: asyncpg.Connection, order_id: str) -> int | None:
    """Give back the order's standing deduction; its amount, or ``None`` when there was none."""
    return await conn.fetchval(_REFUND, order_id)


async def insert(conn: asyncpg.Connection, payment: Payment) -> bool:
    """Record ``payment`` unless the order already has a record; ``True`` when written."""
    p = payment
    return bool(await conn.fetchval(
        _INSERT, p.order_id, p.user_id, p.amount, p.status.value, p.balance_after, p.failure_code, p.reason
    ))
