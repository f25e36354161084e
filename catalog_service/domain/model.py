"""Products and the status rule.

``stock`` is what can still be sold. ``SOLD_OUT`` is derived: a product that is not
``DISCONTINUED`` is ``SOLD_OUT`` exactly when its stock is 0, ``SELLABLE`` otherwise.
``DISCONTINUED`` is only set (and lifted) by an administrator.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from catalog_service.domain.errors import InvalidProductChangeError

MAX_AMOUNT = 10**12
"""Upper bound of price and stock, so absurd numbers are a 400 and never overflow bigint."""
MAX_NAME = 200
MAX_ID = 2**63 - 1
"""Largest product id (bigint)."""


class ProductStatus(enum.StrEnum):
    SELLABLE = "SELLABLE"
    SOLD_OUT = "SOLD_OUT"
    DISCONTINUED = "DISCONTINUED"


def derive_status(stock: int, discontinued: bool) -> ProductStatus:
    """The status a product with ``stock`` has: the one rule every change goes through."""
    if discontinued:
        return ProductStatus.DISCONTINUED
    return ProductStatus.SELLABLE if stock > 0 else ProductStatus.SOLD_OUT


@dataclass(frozen=True)
class Product:
    """A product as stored."""

    product_id: int
    name: str
    price: int
    stock: int
    status: ProductStatus
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def discontinued(self) -> bool:
        return self.status is ProductStatus.DISCONTINUED

    @property
    def sellable(self) -> bool:
        """Stock may be taken from it (SOLD_OUT still is, its stock is just 0)."""
        return not self.discontinued

    def with_stock(self, stock: int) -> Product:
        """The product after its stock became ``stock`` (status follows)."""
        if stock < 0:
            raise ValueError(f"stock {stock} out of range")
        return replace(self, stock=stock, status=derive_status(stock, self.discontinued))


@dataclass(frozen=True)
class ProductChange:
    """An administrator's change; ``None`` leaves a field as it is.

    ``status`` may be ``SELLABLE`` (lift a discontinuation: the product becomes SELLABLE, or
    SOLD_OUT when its stock is 0) or ``DISCONTINUED``.
    """

    name: str | None = None
    price: int | None = None
    stock: int | None = None
    status: ProductStatus | None = None


def new_status_of(current: Product, change: ProductChange) -> ProductStatus:
    stock = current.stock if change.stock is None else change.stock
    discontinued = current.discontinued if change.status is None else change.status is ProductStatus.DISCONTINUED
    return derive_status(stock, discontinued)


def apply_change(current: Product, change: ProductChange) -> Product:
    """``current`` after ``change``; the status is re-derived from the resulting stock."""
    if change.status is ProductStatus.SOLD_OUT:
        raise InvalidProductChangeError("SOLD_OUT follows from stock 0 and cannot be set")
    return replace(
        current,
        name=current.name if change.name is None else change.name,
        price=current.price if change.price is None else change.price,
        stock=current.stock if change.stock is None else change.stock,
        status=new_status_of(current, change),
    )


def new_product(name: str, price: int, stock: int) -> Product:
    """A product not yet stored (id 0): SELLABLE, or SOLD_OUT when created without stock."""
    return Product(0, name, price, stock, derive_status(stock, False))
