"""The outcome notice (db.outcomes): parsed from JSON or a bare order id, applied to the order."""

from __future__ import annotations

from datetime import UTC, datetime

from order_service.db.outcomes import finished, parse_notice
from order_service.domain.model import Order, OrderLine, OrderStatus

ORDER = Order(
    order_id="0b6f5c1e-3f55-4ab5-9d3c-2ad2c1f1d0a1",
    user_id=7,
    lines=(OrderLine(10, "Apple", 1000, 2),),
    user_coupon_id=3,
    created_at=datetime(2026, 11, 25, 1, 0, tzinfo=UTC),
)


def test_a_json_notice_finishes_the_order_it_names() -> None:
    payload = (
        '{"order_id" : "0b6f5c1e-3f55-4ab5-9d3c-2ad2c1f1d0a1", "status" : "COMPLETED", "failure_code" : null,'
        ' "discount_amount" : 500, "paid_amount" : 1500, "completed_at" : "2026-11-25T01:00:01.25+00:00"}'
    )
    order_id, outcome = parse_notice(payload)
    assert order_id == ORDER.order_id and outcome is not None
    done = finished(ORDER, outcome)
    assert done.status is OrderStatus.COMPLETED and done.finished
    assert (done.discount_amount, done.paid_amount, done.failure_code) == (500, 1500, None)
    assert done.completed_at == datetime(2026, 11, 25, 1, 0, 1, 250000, tzinfo=UTC)
    assert done.lines == ORDER.lines and done.created_at == ORDER.created_at


def test_a_failed_outcome_has_no_completion_time() -> None:
    _, outcome = parse_notice(
        '{"order_id": "x", "status": "FAILED", "failure_code": "OUT_OF_STOCK",'
        ' "discount_amount": 0, "paid_amount": 0, "completed_at": null}'
    )
    assert outcome is not None
    done = finished(ORDER, outcome)
    assert done.status is OrderStatus.FAILED and done.failure_code == "OUT_OF_STOCK" and done.completed_at is None


def test_a_bare_order_id_carries_no_outcome() -> None:
    assert parse_notice("0b6f5c1e-3f55-4ab5-9d3c-2ad2c1f1d0a1") == ("0b6f5c1e-3f55-4ab5-9d3c-2ad2c1f1d0a1", None)
