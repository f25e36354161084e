"""Reading and writing the daily sales counters and product names."""

from __future__ import annotations

from datetime import date

import asyncpg

from ranking_service.domain.model import ProductSales, Tally

_ADD_SALES = """
INSERT INTO daily_product_sales (day, product_id, quantity, order_count)
SELECT * FROM unnest($1::date[], $2::bigint[], $3::bigint[], $4::bigint[])
ON CONFLICT (day, product_id) DO UPDATE
SET quantity = daily_product_sales.quantity + EXCLUDED.quantity,
    order_count = daily_product_sales.order_count + EXCLUDED.order_count
"""

_SET_NAMES = """
INSERT INTO product_names (product_id, name, named_at)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[])
ON CONFLICT (product_id) DO UPDATE
SET name = EXCLUDED.name, named_at = EXCLUDED.named_at
WHERE product_names.named_at <= EXCLUDED.named_at
"""

_TOP = """
SELECT s.product_id, COALESCE(n.name, '') AS name,
       SUM(s.quantity)::bigint AS quantity_sold, SUM(s.order_count)::bigint AS order_count
FROM daily_product_sales s
LEFT JOIN product_names n ON n.product_id = s.product_id
WHERE s.day BETWEEN $1 AND $2
GROUP BY s.product_id, n.name
ORDER BY quantity_sold DESC, s.product_id
LIMIT $3
"""


class PgSales:
    """The ``Sales`` port over a connection (``service.ports``)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, tally: Tally) -> None:
        """Add a batch's counters (one statement) and keep the latest product names (one statement)."""
        sales = tally.sales_rows()
        if sales:
            await self._conn.execute(_ADD_SALES, *(list(column) for column in zip(*sales, strict=True)))
        names = tally.name_rows()
        if names:
            await self._conn.execute(_SET_NAMES, *(list(column) for column in zip(*names, strict=True)))

    async def top(self, first: date, last: date, limit: int) -> list[ProductSales]:
        """The ``limit`` best-selling products over ``first..last`` (inclusive)."""
        rows = await self._conn.fetch(_TOP, first, last, limit)
        return [ProductSales(r["product_id"], r["name"], r["quantity_sold"], r["order_count"]) for r in rows]
