"""The stock step of the payment saga as pure decisions.

The service layer locks the products of an order, then asks :func:`deduct` what happens; the
answer is either the products' new states and what the order took, or the one failure that
refuses the whole order (all lines or none).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from catalog_service.domain.model import Product


class OrderStockStatus(enum.StrEnum):
    """What the catalog did for an order (the business key of the saga step)."""

    DEDUCTED = "DEDUCTED"
    RESTORED = "RESTORED"
    FAILED = "FAILED"
    FENCED = "FENCED"  # restored before anything was taken: a later deduction is refused


class FailureCode(enum.StrEnum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PRODUCT_NOT_SELLABLE = "PRODUCT_NOT_SELLABLE"
    ALREADY_COMPENSATED = "ALREADY_COMPENSATED"


@dataclass(frozen=True)
class Refusal:
    """Why an order's deduction is refused, naming the product when there is one."""

    code: FailureCode
    product_id: int | None = None

    @property
    def reason(self) -> str:
        if self.product_id is None:
            return self.code.value
        return f"{self.code.value}: product {self.product_id}"


@dataclass(frozen=True)
class Deduction:
    """The products after an accepted deduction, and the quantity taken per product."""

    products: list[Product]
    taken: dict[int, int]


def merge_lines(lines: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Quantity per product id, in product-id order (a product named twice counts twice)."""
    merged: dict[int, int] = {}
    for product_id, quantity in lines:
        if quantity <= 0:
            raise ValueError(f"quantity {quantity} of product {product_id} must be positive")
        merged[product_id] = merged.get(product_id, 0) + quantity
    return dict(sorted(merged.items()))


def deduct(products: Mapping[int, Product], wanted: Mapping[int, int]) -> Deduction | Refusal:
    """Take ``wanted`` from ``products`` (id -> locked product), all lines or none.

    A product unknown or discontinued refuses with PRODUCT_NOT_SELLABLE before any shortage is
    considered; otherwise the lowest product id that is short refuses with OUT_OF_STOCK.
    """
    ids = sorted(wanted)
    for product_id in ids:
        product = products.get(product_id)
        if product is None or not product.sellable:
            return Refusal(FailureCode.PRODUCT_NOT_SELLABLE, product_id)
    for product_id in ids:
        if products[product_id].stock < wanted[product_id]:
            return Refusal(FailureCode.OUT_OF_STOCK, product_id)
    changed = [products[pid].with_stock(products[pid].stock - wanted[pid]) for pid in ids]
    return Deduction(changed, {pid: wanted[pid] for pid in ids})


def restore(products: Mapping[int, Product], taken: Mapping[int, int]) -> list[Product]:
    """``products`` with what an order took put back (status follows the stock)."""
    return [products[pid].with_stock(products[pid].stock + qty) for pid, qty in sorted(taken.items())]


def replay_refusal(status: OrderStockStatus, code: str | None, product_id: int | None) -> Refusal | None:
    """The answer to a DeductStock for an order already handled: ``None`` means StockDeducted."""
    if status is OrderStockStatus.DEDUCTED:
        return None
    if status is OrderStockStatus.FAILED:
        return Refusal(FailureCode(code or FailureCode.OUT_OF_STOCK), product_id)
    return Refusal(FailureCode.ALREADY_COMPENSATED)
