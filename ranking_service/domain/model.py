"""The ranking context's pure rules: calendar days in a time zone, tallies of completed orders,
ranks, and which days the daily batch still has to roll up. No IO, no clock: instants come in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ranking_service.domain.errors import InvalidRebuildDayError

# ---------------------------------------------------------------------------- calendar days


def day_of(instant: datetime, tz: ZoneInfo) -> date:
    """The calendar day on which ``instant`` (timezone-aware) falls in ``tz``."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return instant.astimezone(tz).date()


@dataclass(frozen=True)
class Window:
    """An inclusive range of calendar days."""

    first: date
    last: date

    @classmethod
    def ending(cls, today: date, days: int) -> Window:
        """The last ``days`` calendar days, ``today`` included."""
        if days < 1:
            raise ValueError("days must be at least 1")
        return cls(today - timedelta(days=days - 1), today)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last


# ---------------------------------------------------------------------------- ranks


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


# ---------------------------------------------------------------------------- tallies


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


SalesRow = tuple[date, int, int, int]
"""``(day, product_id, quantity, order_count)``."""
NameRow = tuple[int, str, datetime]
"""``(product_id, name, named_at)``."""


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

    def sales_rows(self) -> list[SalesRow]:
        """``(day, product_id, quantity, order_count)`` sorted by key, so writers lock in one order."""
        return [(d, p, c.quantity, c.order_count) for (d, p), c in sorted(self.sales.items())]

    def name_rows(self) -> list[NameRow]:
        return [(p, name, at) for p, (at, name) in sorted(self.names.items())]


def tally(orders: Iterable[CompletedOrder], tz: ZoneInfo) -> Tally:
    """The counters of ``orders``."""
    result = Tally()
    for order in orders:
        result.add(order, tz)
    return result


# ---------------------------------------------------------------------------- the daily batch


def batch_today(now: datetime, tz: ZoneInfo, delay_s: float = 0.0) -> date:
    """The day the batch considers current: a day is closed ``delay_s`` after its midnight."""
    return day_of(now - timedelta(seconds=delay_s), tz)


def days_due(today: date, done: Iterable[date], catch_up_days: int) -> list[date]:
    """The closed days (before ``today``, at most ``catch_up_days`` back) not rolled up yet, oldest first."""
    finished = set(done)
    candidates = (today - timedelta(days=n) for n in range(catch_up_days, 0, -1))
    return [day for day in candidates if day not in finished]


@dataclass(frozen=True)
class BatchRules:
    """The batch's settings: the service's time zone, the grace after midnight for late events,
    how far back missed days are caught up, and how many products a day's snapshot keeps."""

    tz: ZoneInfo
    delay_s: float = 0.0
    catch_up_days: int = 30
    snapshot_size: int = 100

    def today(self, now: datetime) -> date:
        """The batch's current day at ``now`` (see :func:`batch_today`)."""
        return batch_today(now, self.tz, self.delay_s)

    def oldest(self, today: date) -> date:
        """The oldest day the batch still looks at."""
        return today - timedelta(days=self.catch_up_days)

    def due(self, today: date, done: Iterable[date]) -> list[date]:
        return days_due(today, done, self.catch_up_days)

    def rebuild_day(self, today: date, day: date | None) -> date:
        """The day a rebuild recomputes: ``day`` (default: yesterday), a closed day within the window."""
        target = day or today - timedelta(days=1)
        if not self.oldest(today) <= target < today:
            raise InvalidRebuildDayError(
                f"day must be a closed day within the last {self.catch_up_days} days (before {today.isoformat()})"
            )
        return target
