"""Product use cases, named as their views: create, patch, get one, list a page, look several up."""

from __future__ import annotations

from dataclasses import dataclass

from catalog_service.domain.commands import CreateProduct, GetProduct, ListProducts, LookupProducts, PatchProduct
from catalog_service.domain.errors import ProductNotFoundError
from catalog_service.domain.model import Product, apply_change, new_product
from catalog_service.service.ports import SingleStatementFactory, UnitOfWorkFactory


@dataclass(frozen=True)
class Page:
    items: list[Product]
    last_id: int | None
    """The id to continue after, or ``None`` when this was the last page."""


async def create_product(uow: UnitOfWorkFactory, cmd: CreateProduct) -> Product:
    """Add a product (SELLABLE, or SOLD_OUT without stock)."""
    async with uow() as tx:
        product = await tx.products.add(new_product(cmd.name, cmd.price, cmd.stock))
        await tx.commit()
    return product


async def patch_product(uow: UnitOfWorkFactory, cmd: PatchProduct) -> Product:
    """Apply an administrator's change under the row lock, so it never races a deduction."""
    async with uow() as tx:
        current = await tx.products.get(cmd.product_id, for_update=True)
        if current is None:
            raise ProductNotFoundError(cmd.product_id)
        product = await tx.products.update(apply_change(current, cmd.change))
        await tx.commit()
    return product


async def get_product(single_statement: SingleStatementFactory, cmd: GetProduct) -> Product:
    async with single_statement() as repos:
        product = await repos.products.get(cmd.product_id)
    if product is None:
        raise ProductNotFoundError(cmd.product_id)
    return product


async def list_products(single_statement: SingleStatementFactory, cmd: ListProducts) -> Page:
    """A page in product-id order; one extra row tells whether another page follows."""
    async with single_statement() as repos:
        rows = await repos.products.page(only_sellable=cmd.only_sellable, after=cmd.after, limit=cmd.limit + 1)
    items = rows[: cmd.limit]
    return Page(items, items[-1].product_id if len(rows) > cmd.limit else None)


async def lookup_products(single_statement: SingleStatementFactory, cmd: LookupProducts) -> list[Product]:
    """The products among the ids that exist, in id order."""
    async with single_statement() as repos:
        return await repos.products.fetch_many(list(dict.fromkeys(cmd.product_ids)))
