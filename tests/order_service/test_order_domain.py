"""The order's pure rules (no IO)."""

from __future__ import annotations

import pytest

from order_service.domain.model import OrderStatus, kept_amounts


@pytest.mark.parametrize(
    ("status", "kept"),
    [
        (OrderStatus.COMPLETED, (500, 1500)),
        (OrderStatus.FAILED, (0, 0)),
        (OrderStatus.PENDING, (0, 0)),
    ],
)
def test_only_a_completed_order_keeps_its_amounts(status: OrderStatus, kept: tuple[int, int]) -> None:
    assert kept_amounts(status, 500, 1500) == kept
