"""Unit tests of the pure ranking domain (no IO)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ranking_service.domain.model import (
    CompletedOrder,
    ProductSales,
    SoldItem,
    Window,
    batch_today,
    day_of,
    days_due,
    rank,
    tally,
)

SEOUL = ZoneInfo("Asia/Seoul")


@pytest.mark.parametrize(
    ("instant", "day"),
    [
        (datetime(2026, 11, 23, 14, 59, 59, tzinfo=UTC), date(2026, 11, 23)),
        (datetime(2026, 11, 23, 15, 0, 0, tzinfo=UTC), date(2026, 11, 24)),  # 00:00 KST
        (datetime(2026, 11, 24, 14, 59, 59, 999999, tzinfo=UTC), date(2026, 11, 24)),
        (datetime(2026, 11, 24, 0, 0, tzinfo=timezone(timedelta(hours=9))), date(2026, 11, 24)),
    ],
)
def test_day_of_an_instant_in_seoul(instant: datetime, day: date) -> None:
    assert day_of(instant, SEOUL) == day


def test_day_of_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError):
        day_of(datetime(2026, 11, 24), SEOUL)


def test_window_of_the_last_days_includes_today() -> None:
    window = Window.ending(date(2026, 11, 24), 3)
    assert (window.first, window.last) == (date(2026, 11, 22), date(2026, 11, 24))
    assert date(2026, 11, 22) in window and date(2026, 11, 24) in window
    assert date(2026, 11, 21) not in window  # `days` days ago is outside
    assert Window.ending(date(2026, 3, 1), 1) == Window(date(2026, 3, 1), date(2026, 3, 1))
    assert Window.ending(date(2026, 3, 1), 2).first == date(2026, 2, 28)


def test_window_needs_at_least_one_day() -> None:
    with pytest.raises(ValueError):
        Window.ending(date(2026, 11, 24), 0)


def _sales(pid: int, qty: int) -> ProductSales:
    return ProductSales(pid, f"p{pid}", qty, 1)


def test_rank_orders_by_quantity_then_product_id() -> None:
    ranked = rank([_sales(7, 5), _sales(3, 9), _sales(5, 5), _sales(1, 2)], limit=10)
    assert [(r.rank, r.sales.product_id) for r in ranked] == [(1, 3), (2, 5), (3, 7), (4, 1)]


def test_rank_cuts_at_limit_after_breaking_ties() -> None:
    ranked = rank([_sales(9, 4), _sales(2, 4), _sales(4, 4)], limit=2)
    assert [r.sales.product_id for r in ranked] == [2, 4]
    assert rank([], limit=5) == []


def _order(at: datetime, *items: tuple[int, str, int]) -> CompletedOrder:
    return CompletedOrder(at, tuple(SoldItem(*i) for i in items))


def test_tally_counts_quantity_and_orders_per_day_and_product() -> None:
    t0 = datetime(2026, 11, 23, 14, 59, 59, tzinfo=UTC)  # 23rd in Seoul
    t1 = datetime(2026, 11, 23, 15, 0, 0, tzinfo=UTC)  # 24th in Seoul
    result = tally(
        [
            _order(t0, (10, "a", 2), (11, "b", 1)),
            _order(t1, (10, "a", 3), (10, "a", 1)),  # two lines of one product: one order
            _order(t1, (10, "a", 1)),
        ],
        SEOUL,
    )
    assert result.sales_rows() == [
        (date(2026, 11, 23), 10, 2, 1),
        (date(2026, 11, 23), 11, 1, 1),
        (date(2026, 11, 24), 10, 5, 2),
    ]


def test_tally_keeps_the_latest_name_whatever_the_order() -> None:
    early = datetime(2026, 11, 24, 1, tzinfo=UTC)
    late = early + timedelta(minutes=5)
    result = tally([_order(late, (10, "new", 1)), _order(early, (10, "old", 1))], SEOUL)
    assert result.name_rows() == [(10, "new", late)]


def test_days_due_are_the_missing_closed_days_within_the_bound() -> None:
    today = date(2026, 11, 24)
    done = [date(2026, 11, 21), date(2026, 11, 23)]
    assert days_due(today, done, 4) == [date(2026, 11, 20), date(2026, 11, 22)]
    assert days_due(today, [], 1) == [date(2026, 11, 23)]
    assert days_due(today, [date(2026, 11, 23)], 1) == []


def test_batch_today_waits_for_the_grace_after_midnight() -> None:
    midnight = datetime(2026, 11, 23, 15, 0, 0, tzinfo=UTC)  # 2026-11-24 00:00 KST
    assert batch_today(midnight, SEOUL) == date(2026, 11, 24)
    assert batch_today(midnight, SEOUL, delay_s=30) == date(2026, 11, 23)
    assert batch_today(midnight + timedelta(seconds=30), SEOUL, delay_s=30) == date(2026, 11, 24)
