"""Ranking products: quantity sold descending, ties broken by product id ascending."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProductSales:
    """What one product sold over a window."""

    product_id: int
    name: str
    quantity_sold: int
    order_count: int


@dataclass(frozen=True)
class RankedProduct:
    rank: int
    sales: ProductSales


def rank(lines: Iterable[ProductSales], limit: int) -> list[RankedProduct]:
    """The top ``limit`` products, numbered 1..n; equal quantities are ordered by product id."""
    ordered = sorted(lines, key=lambda s: (-s.quantity_sold, s.product_id))
    return [RankedProduct(n, sales) for n, sales in enumerate(ordered[:limit], start=1)]
