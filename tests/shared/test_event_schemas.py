"""The published JSON Schemas are the ones the code's models produce."""

from __future__ import annotations

import pytest

from shared.events.orders import PUBLIC_TOPICS
from shared.events.schemas import OUT_DIR, render, schema_for


@pytest.mark.parametrize("topic", sorted(PUBLIC_TOPICS))
def test_committed_schema_matches_the_model(topic: str) -> None:
    committed = (OUT_DIR / f"{topic}.schema.json").read_text()
    assert committed == render(topic), "run: python -m shared.events.schemas"


def test_order_completed_has_the_contract_fields() -> None:
    schema = schema_for("order.completed")
    assert set(schema["required"]) >= {
        "order_id", "user_id", "items", "total_amount", "discount_amount", "paid_amount",
        "user_coupon_id", "completed_at", "event_id", "occurred_at",
    }
    assert schema["x-headers"]["event-type"] == "OrderCompleted"
