"""Product use cases: create, change, read one, list a page, look several up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from catalog_service.db import products as repo
from catalog_service.domain.errors import ProductNotFoundError
from catalog_service.domain.model import Product, ProductChange, apply_change, new_product
from shared.db.uow import UnitOfWork


@dataclass(frozen=True)
class Page:
    items: list[Product]
    last_id: int | None
    """The id to continue after, or ``None`` when this was the last page."""


async def create_product(pool: asyncpg.Pool, name: str, price: int, stock: int) -> Product:
    """Add a product (SELLABLE, or SOLD_OUT without stock)."""
    async with UnitOfWork(pool) as uow:
        product = await repo.insert(uow.conn, new_product(name, price, stock))
        await uow.commit()
    return product


async def change_product(pool: asyncpg.Pool, product_id: int, change: ProductChange) -> Product:
    """Apply an administrator's change under the row lock, so it never races a deduction."""
    async with UnitOfWork(pool) as uow:
        current = await repo.get(uow.conn, product_id, for_update=True)
        if current is None:
            raise ProductNotFoundError(product_id)
        product = await repo.update(uow.conn, apply_change(current, change))
        await uow.commit()
    return product


async def get_product(pool: asyncpg.Pool, product_id: int) -> Product:
    async with pool.acquire() as conn:
        product = await repo.get(conn, product_id)
    if product is None:
        raise ProductNotFoundError(product_id)
    return product


async def list_products(pool: asyncpg.Pool, *, only_sellable: bool, after: int, limit: int) -> Page:
    """A page in product-id order; one extra row tells whether another page follows."""
    async with pool.acquire() as conn:
        rows = await repo.page(conn, only_sellable=only_sellable, after=after, limit=limit + 1)
    items = rows[:limit]
    return Page(items, items[-1].product_id if len(rows) > limit else None)


async def lookup_products(pool: asyncpg.Pool, ids: Sequence[int]) -> list[Product]:
    """The products among ``ids`` that exist, in id order."""
    async with pool.acquire() as conn:
        return await repo.fetch_many(conn, list(dict.fromkeys(ids)))
