"""SQL for ``order_stock`` / ``order_stock_lines``: what the saga's stock step did per order.

A consumed batch of commands costs a fixed number of statements whatever its size: one claim of
every order of the batch, one read of the orders already known (only when there are some), and
one write of every change (products, orders, lines) together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from catalog_service.domain.model import Product
from catalog_service.domain.stock import OrderRecord, OrderStockStatus, replay_refusal


def _record(row: asyncpg.Record) -> OrderRecord:
    status = OrderStockStatus(row["status"])
    failure = None
    if status is OrderStockStatus.FAILED:
        failure = replay_refusal(status, row["failure_code"], row["failure_product_id"])
    return OrderRecord(status, failure, dict(zip(row["product_ids"], row["quantities"], strict=True)))


def _bigint_or_none(value: int | None) -> int | None:
    """A product id from a command may be any integer; one beyond bigint is stored as unknown."""
    return value if value is not None and -(2**63) <= value < 2**63 else None


class PostgresOrderStock:
    """``order_stock`` and ``order_stock_lines``: every method is one statement (or none)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def claim_many(self, claims: Mapping[str, OrderStockStatus]) -> set[str]:
        """Record every order of ``claims`` that is new with its status; return the ones that were.

        Rows go in in order-id order, so two transactions claiming overlapping orders queue on the
        primary key instead of deadlocking; a claim of an order another transaction is recording
        waits until that one commits, then sees the order as known.
        """
        if not claims:
            return set()
        ids = sorted(claims)
        rows = await self._conn.fetch(
            """
            INSERT INTO order_stock (order_id, status)
            SELECT c.order_id, c.status FROM unnest($1::text[], $2::text[]) AS c(order_id, status) ORDER BY c.order_id
            ON CONFLICT (order_id) DO NOTHING
            RETURNING order_id
            """,
            ids,
            [claims[order_id].value for order_id in ids],
        )
        return {row["order_id"] for row in rows}

    async def read_many(self, order_ids: Sequence[str]) -> dict[str, OrderRecord]:
        """The records of ``order_ids`` (known orders), locked in order-id order, with what each took."""
        if not order_ids:
            return {}
        rows = await self._conn.fetch(
            """
            SELECT s.order_id, s.status, s.failure_code, s.failure_product_id,
                   ARRAY(SELECT l.product_id FROM order_stock_lines l WHERE l.order_id = s.order_id
                         ORDER BY l.product_id) AS product_ids,
                   ARRAY(SELECT l.quantity FROM order_stock_lines l WHERE l.order_id = s.order_id
                         ORDER BY l.product_id) AS quantities
            FROM order_stock s WHERE s.order_id = ANY($1::text[])
            ORDER BY s.order_id FOR UPDATE OF s
            """,
            sorted(set(order_ids)),
        )
        return {row["order_id"]: _record(row) for row in rows}

    async def write_batch(
        self,
        products: Sequence[Product],
        orders: Mapping[str, OrderRecord],
        lines: Mapping[str, Mapping[int, int]],
    ) -> None:
        """Store, in one statement, the products' new stock and status, the orders' new records and
        the lines the deducted orders took (the orders' rows exist: :meth:`claim_many` made them)."""
        if not (products or orders or lines):
            return
        order_ids = sorted(orders)
        line_rows = [(order_id, pid, qty) for order_id, taken in lines.items() for pid, qty in taken.items()]
        failures = [orders[order_id].failure for order_id in order_ids]
        await self._conn.execute(
            """
            WITH stock AS (
                UPDATE products p SET stock = u.stock, status = u.status, updated_at = now()
                FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(id, stock, status)
                WHERE p.id = u.id
            ), records AS (
                UPDATE order_stock s SET status = u.status, failure_code = u.code, failure_product_id = u.product_id,
                    updated_at = now()
                FROM unnest($4::text[], $5::text[], $6::text[], $7::bigint[]) AS u(order_id, status, code, product_id)
                WHERE s.order_id = u.order_id
            )
            INSERT INTO order_stock_lines (order_id, product_id, quantity)
            SELECT l.order_id, l.product_id, l.quantity
            FROM unnest($8::text[], $9::bigint[], $10::bigint[]) AS l(order_id, product_id, quantity)
            """,
            [p.product_id for p in products],
            [p.stock for p in products],
            [p.status.value for p in products],
            order_ids,
            [orders[order_id].status.value for order_id in order_ids],
            [f.code.value if f else None for f in failures],
            [_bigint_or_none(f.product_id) if f else None for f in failures],
            [row[0] for row in line_rows],
            [row[1] for row in line_rows],
            [row[2] for row in line_rows],
        )
