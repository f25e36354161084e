"""The order model: lines priced from the catalog at creation time, totals and status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class OrderLine:
    """One product of an order, with the name and unit price it had when the order was placed."""

    product_id: int
    name: str
    unit_price: int
    quantity: int

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Order:
    """An order as stored; amounts in KRW."""

    order_id: str
    user_id: int
    lines: tuple[OrderLine, ...]
    user_coupon_id: int | None
    created_at: datetime
    status: OrderStatus = OrderStatus.PENDING
    discount_amount: int = 0
    paid_amount: int = 0
    failure_code: str | None = None
    completed_at: datetime | None = None

    @property
    def total_amount(self) -> int:
        return sum(line.line_total for line in self.lines)

    @property
    def finished(self) -> bool:
        return self.status is not OrderStatus.PENDING


@dataclass(frozen=True)
class Product:
    """What the catalog says about a product at order time."""

    product_id: int
    name: str
    price: int
    status: str


def kept_amounts(status: str, discount_amount: int, paid_amount: int) -> tuple[int, int]:
    """``(discount_amount, paid_amount)`` a finished order shows and stores: what its payment
    applied *and kept*. A failed order kept nothing (its balance was refunded, its coupon given
    back), so it shows 0, as a pending one does (API.md "Orders and payment")."""
    if status == OrderStatus.COMPLETED:
        return discount_amount, paid_amount
    return 0, 0


def price_lines(quantities: dict[int, int], products: dict[int, Product]) -> tuple[OrderLine, ...]:
    """Snapshot name and price of each product; callers have checked every id exists."""
    return tuple(OrderLine(pid, products[pid].name, products[pid].price, qty) for pid, qty in quantities.items())
