"""Tallying completed orders: quantity sold and number of orders per (day, product)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from ranking_service.domain.calendar import day_of


@dataclass(frozen=True)
class SoldItem:
    """One line of a completed order, as the ranking needs it."""

    product_id: int
    name: str
    quantity: int


@dataclass(frozen=True)
class CompletedOrder:
    """A completed order: when it completed and what it sold."""

    completed_at: datetime
    items: tuple[SoldItem, ...]


@dataclass
class Counter:
    quantity: int = 0
    order_count: int = 0


@dataclass
class Tally:
    """Counters of one consumed batch, added to the stored statistics in one statement."""

    sales: dict[tuple[date, int], Counter] = field(default_factory=dict)
    names: dict[int, tuple[datetime, str]] = field(default_factory=dict)

    def add(self, order: CompletedOrder, tz: ZoneInfo) -> None:
        day = day_of(order.completed_at, tz)
        per_product: dict[int, int] = {}
        for item in order.items:
            per_product[item.product_id] = per_product.get(item.product_id, 0) + item.quantity
            self._name(item, order.completed_at)
        for product_id, quantity in per_product.items():
            counter = self.sales.setdefault((day, product_id), Counter())
            counter.quantity += quantity
            counter.order_count += 1  # an order counts once per product, however many lines

    def _name(self, item: SoldItem, at: datetime) -> None:
        known = self.names.get(item.product_id)
        if known is None or known[0] <= at:
            self.names[item.product_id] = (at, item.name)

    def sales_rows(self) -> list[tuple[date, int, int, int]]:
        """``(day, product_id, quantity, order_count)`` sorted by key, so writers lock in one order."""
        return [(d, p, c.quantity, c.order_count) for (d, p), c in sorted(self.sales.items())]

    def name_rows(self) -> list[tuple[int, str, datetime]]:
        return [(p, name, at) for p, (at, name) in sorted(self.names.items())]


def tally(orders: Iterable[CompletedOrder], tz: ZoneInfo) -> Tally:
    """The counters of ``orders``."""
    result = Tally()
    for order in orders:
        result.add(order, tz)
    return result
