"""Pure rules: discounts, statuses, validation and the saga decisions (no IO)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coupon_service.domain import saga
from coupon_service.domain.errors import InvalidCouponError
from coupon_service.domain.model import CouponTerms, DiscountType, user_coupon_status
from coupon_service.domain.saga import Holding, OrderCoupon
from coupon_service.domain.saga import OrderCouponState as S

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def terms(kind: str = "FIXED", value: int = 3000, minimum: int = 0, **kw) -> CouponTerms:
    return CouponTerms("c", DiscountType(kind), value, 10, 7, minimum, **kw)


@pytest.mark.parametrize(
    ("kind", "value", "minimum", "total", "expected"),
    [
        ("FIXED", 3000, 0, 10000, 3000),
        ("FIXED", 3000, 0, 2000, 2000),  # never above the total
        ("RATE", 15, 0, 10001, 1500),  # floor
        ("RATE", 100, 0, 777, 777),
        ("RATE", 10, 5000, 4999, None),  # below the minimum
        ("FIXED", 1, 5000, 5000, 1),
        ("FIXED", 10, 0, 0, 0),
    ],
)
def test_discount(kind, value, minimum, total, expected) -> None:
    assert terms(kind, value, minimum).discount(total) == expected


@pytest.mark.parametrize(
    "bad",
    [
        terms("RATE", 0),
        terms("RATE", 101),
        terms("FIXED", 0),
        terms(minimum=-1),
        terms(issue_starts_at=NOW, issue_ends_at=NOW),
    ],
)
def test_invalid_terms(bad: CouponTerms) -> None:
    with pytest.raises(InvalidCouponError):
        bad.validate()


def test_coupon_status() -> None:
    window = terms(issue_starts_at=NOW, issue_ends_at=NOW + timedelta(days=1))
    assert window.status(NOW - timedelta(seconds=1), 0) == "NOT_STARTED"
    assert window.status(NOW, 9) == "ISSUABLE"
    assert window.status(NOW, 10) == "SOLD_OUT"
    assert window.status(NOW + timedelta(days=1), 0) == "ENDED"


def test_user_coupon_status() -> None:
    assert user_coupon_status("AVAILABLE", NOW, NOW) == "EXPIRED"
    assert user_coupon_status("AVAILABLE", NOW + timedelta(seconds=1), NOW) == "AVAILABLE"
    assert user_coupon_status("USED", NOW - timedelta(days=1), NOW) == "USED"


def holding(**kw) -> Holding:
    values = {
        "user_coupon_id": 5,
        "user_id": 1,
        "status": "AVAILABLE",
        "expires_at": NOW + timedelta(days=1),
        "terms": terms(),
    }
    return Holding(**{**values, **kw})


@pytest.mark.parametrize(
    ("held", "amount", "state", "discount"),
    [
        (holding(), 10000, S.RESERVED, 3000),
        (holding(user_id=2), 10000, S.REFUSED, None),
        (holding(status="RESERVED"), 10000, S.REFUSED, None),
        (holding(status="USED"), 10000, S.REFUSED, None),
        (holding(expires_at=NOW), 10000, S.REFUSED, None),
        (holding(terms=terms(minimum=20000)), 10000, S.REFUSED, None),
        (None, 10000, S.REFUSED, None),
    ],
)
def test_decide_reserve(held, amount, state, discount) -> None:
    record = saga.decide_reserve("o", 1, amount, held, NOW)
    assert (record.state, record.discount_amount) == (state, discount)
    assert saga.is_reserved(record) == (state is S.RESERVED)
    if state is S.REFUSED:
        assert record.failure_code == "COUPON_UNAVAILABLE"


def test_compensation_and_fencing() -> None:
    reserved = OrderCoupon("o", S.RESERVED, 5, 3000)
    assert saga.release("o", reserved).state is S.RELEASED
    assert saga.release("o", None).state is S.FENCED
    assert saga.release("o", OrderCoupon("o", S.CONFIRMED, 5, 3000)) is None
    assert saga.confirm(reserved).state is S.CONFIRMED
    assert saga.confirm(None) is None
    for done in (OrderCoupon("o", S.RELEASED, 5, 3000), OrderCoupon("o", S.FENCED)):
        answer = saga.reserve_answer(done)
        assert answer.failure_code == "ALREADY_COMPENSATED" and not saga.is_reserved(answer)
    assert saga.is_reserved(saga.reserve_answer(reserved))
