"""The message envelope: headers of the event contract, decoding, poison detection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from shared.events import REGISTRY
from shared.events.orders import OrderCompleted, OrderCompletedItem
from shared.messaging.envelope import Outgoing, PoisonMessage


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def _completed() -> OrderCompleted:
    return OrderCompleted(
        order_id="o-1",
        user_id=1,
        items=[OrderCompletedItem(product_id=10, name="Tea", unit_price=1000, quantity=2)],
        total_amount=2000,
        discount_amount=500,
        paid_amount=1500,
        user_coupon_id=7,
        completed_at=datetime(2026, 11, 24, 12, 0, tzinfo=UTC),
    )


def test_headers_follow_the_event_contract() -> None:
    out = Outgoing("order.completed", "o-1", _completed(), request_id="req-1")
    headers = out.headers()
    assert headers["event-type"] == "OrderCompleted"
    assert headers["event-version"] == "1"
    assert headers["event-id"] == str(out.message.event_id)
    assert headers["request-id"] == "req-1"
    assert headers["occurred-at"].endswith("Z")


def test_round_trip() -> None:
    out = Outgoing("order.completed", "o-1", _completed(), request_id="req-1")
    record = Record(out.topic, 0, 5, b"o-1", out.value(), [(k, v.encode()) for k, v in out.headers().items()])
    incoming = REGISTRY.decode(record)
    assert incoming.message == out.message
    assert incoming.key == "o-1" and incoming.request_id == "req-1"


@pytest.mark.parametrize(
    "value, headers",
    [
        (b"{}", [("event-type", b"Nope")]),
        (b"not json", [("event-type", b"OrderCompleted")]),
        (b'{"order_id": 1}', [("event-type", b"OrderCompleted")]),
        (b"{}", []),
        (b"{}", [("event-type", b"\xff\xfe")]),
    ],
)
def test_poison_is_detected(value: bytes, headers: list[tuple[str, bytes]]) -> None:
    with pytest.raises(PoisonMessage):
        REGISTRY.decode(Record("t", 0, 0, None, value, headers))
