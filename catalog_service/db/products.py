"""SQL for products, on the connection of the caller's unit of work."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from catalog_service.domain.model import Product, ProductStatus

_COLUMNS = "id, name, price, stock, status, created_at, updated_at"


def to_product(row: asyncpg.Record) -> Product:
    return Product(
        row["id"],
        row["name"],
        row["price"],
        row["stock"],
        ProductStatus(row["status"]),
        row["created_at"],
        row["updated_at"],
    )


class PostgresProducts:
    """The ``products`` table: every method is one statement."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, product: Product) -> Product:
        """Store a new product (its id is ignored); the stored one, with its id."""
        row = await self._conn.fetchrow(
            f"INSERT INTO products (name, price, stock, status) VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
            product.name,
            product.price,
            product.stock,
            product.status.value,
        )
        return to_product(row)

    async def get(self, product_id: int, *, for_update: bool = False) -> Product | None:
        lock = " FOR UPDATE" if for_update else ""
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM products WHERE id = $1{lock}", product_id)
        return to_product(row) if row else None

    async def lock_many(self, ids: Sequence[int]) -> dict[int, Product]:
        """Lock the rows in product-id order (so overlapping orders never deadlock) and read them."""
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM products WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", list(ids)
        )
        return {row["id"]: to_product(row) for row in rows}

    async def lock_for_batch(self, ids: Sequence[int], order_ids: Sequence[str]) -> dict[int, Product]:
        """Lock and read, in id order, every product a batch of saga commands may touch, before
        anything else: ``ids`` and the products the orders ``order_ids`` took."""
        rows = await self._conn.fetch(
            f"""
            SELECT {_COLUMNS} FROM products
            WHERE id = ANY($1::bigint[]
                || ARRAY(SELECT product_id FROM order_stock_lines WHERE order_id = ANY($2::text[])))
            ORDER BY id FOR UPDATE
            """,
            list(ids),
            list(order_ids),
        )
        return {row["id"]: to_product(row) for row in rows}

    async def update(self, product: Product) -> Product:
        """Store the product's name, price, stock and status; the stored one."""
        row = await self._conn.fetchrow(
            f"""
            UPDATE products SET name = $2, price = $3, stock = $4, status = $5, updated_at = now()
            WHERE id = $1 RETURNING {_COLUMNS}
            """,
            product.product_id,
            product.name,
            product.price,
            product.stock,
            product.status.value,
        )
        return to_product(row)

    async def fetch_many(self, ids: Sequence[int]) -> list[Product]:
        """The products among ``ids`` that exist, in id order."""
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM products WHERE id = ANY($1::bigint[]) ORDER BY id", list(ids)
        )
        return [to_product(row) for row in rows]

    async def page(self, *, only_sellable: bool, after: int, limit: int) -> list[Product]:
        """Up to ``limit`` products with id > ``after``, in id order (keyset pagination)."""
        where = "id > $1" + (" AND status = 'SELLABLE'" if only_sellable else "")
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM products WHERE {where} ORDER BY id LIMIT $2", after, limit
        )
        return [to_product(row) for row in rows]
