"""SQL for ``order_stock`` / ``order_stock_lines``: what the saga's stock step did per order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from catalog_service.domain.model import Product
from catalog_service.domain.stock import OrderStockStatus, Refusal


async def claim(conn: asyncpg.Connection, order_id: str, status: OrderStockStatus) -> bool:
    """Record the order with ``status`` if it is new; ``True`` when it was.

    A concurrent claim of the same order waits on the primary key until the first commits,
    so one transaction per order decides and every other one sees its outcome.
    """
    row = await conn.fetchval(
        "INSERT INTO order_stock (order_id, status) VALUES ($1, $2) ON CONFLICT (order_id) DO NOTHING"
        " RETURNING 1",
        order_id, status.value,
    )
    return row is not None


async def get(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record:
    """The order's record, locked (it exists: call after :func:`claim` returned ``False``)."""
    return await conn.fetchrow(
        "SELECT status, failure_code, failure_product_id FROM order_stock WHERE order_id = $1 FOR UPDATE",
        order_id,
    )


async def mark_failed(conn: asyncpg.Connection, order_id: str, refusal: Refusal) -> None:
    await conn.execute(
        "UPDATE order_stock SET status = 'FAILED', failure_code = $2, failure_product_id = $3,"
        " updated_at = now() WHERE order_id = $1",
        order_id, refusal.code.value, _bigint_or_none(refusal.product_id),
    )


def _bigint_or_none(value: int | None) -> int | None:
    """A product id from a command may be any integer; one beyond bigint is stored as unknown."""
    return value if value is not None and -(2**63) <= value < 2**63 else None


async def set_status(conn: asyncpg.Connection, order_id: str, status: OrderStockStatus) -> None:
    await conn.execute(
        "UPDATE order_stock SET status = $2, updated_at = now() WHERE order_id = $1", order_id, status.value
    )


async def taken(conn: asyncpg.Connection, order_id: str) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT product_id, quantity FROM order_stock_lines WHERE order_id = $1", order_id
    )
    return {row["product_id"]: row["quantity"] for row in rows}


async def write_stock(
    conn: asyncpg.Connection, products: Sequence[Product], order_id: str | None = None,
    taken_lines: Mapping[int, int] | None = None,
) -> None:
    """Store the products' new stock and status, and (for a deduction) the lines the order took,
    in one statement."""
    lines = dict(taken_lines or {})
    await conn.execute(
        """
        WITH stock AS (
            UPDATE products p SET stock = u.stock, status = u.status, updated_at = now()
            FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(id, stock, status)
            WHERE p.id = u.id
        )
        INSERT INTO order_stock_lines (order_id, product_id, quantity)
        SELECT $4, l.product_id, l.quantity
        FROM unnest($5::bigint[], $6::bigint[]) AS l(product_id, quantity)
        """,
        [p.product_id for p in products], [p.stock for p in products], [p.status.value for p in products],
        order_id, list(lines), list(lines.values()),
    )
