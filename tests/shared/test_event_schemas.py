"""The published JSON Schemas are the ones the code's models produce."""

from __future__ import annotations

import pytest

from shared.events.orders import FAILURE_CODES, PUBLIC_TOPICS
from shared.events.schemas import ASYNCAPI_FILE, OUT_DIR, asyncapi, render, render_asyncapi, schema_for


@pytest.mark.parametrize("topic", sorted(PUBLIC_TOPICS))
def test_committed_schema_matches_the_model(topic: str) -> None:
    committed = (OUT_DIR / f"{topic}.schema.json").read_text()
    assert committed == render(topic), "run: python -m shared.events.schemas"


def test_order_completed_has_the_contract_fields() -> None:
    schema = schema_for("order.completed")
    assert set(schema["required"]) >= {
        "order_id",
        "user_id",
        "items",
        "total_amount",
        "discount_amount",
        "paid_amount",
        "user_coupon_id",
        "completed_at",
        "event_id",
        "occurred_at",
    }
    assert schema["x-headers"]["event-type"] == "OrderCompleted"


def test_committed_asyncapi_document_is_up_to_date() -> None:
    committed = (OUT_DIR / ASYNCAPI_FILE).read_text()
    assert committed == render_asyncapi(), "run: python -m shared.events.schemas"


def test_asyncapi_document_describes_each_public_topic_from_the_same_models() -> None:
    doc = asyncapi()
    assert doc["asyncapi"].startswith("3.")
    addresses = {channel["address"] for channel in doc["channels"].values()}
    assert addresses == set(PUBLIC_TOPICS)
    for topic in PUBLIC_TOPICS:
        json_schema = schema_for(topic)
        name = json_schema["title"]
        payload = doc["components"]["schemas"][name]
        assert set(payload["properties"]) == set(json_schema["properties"])
        assert payload["required"] == json_schema["required"]
        message = doc["components"]["messages"][name]
        assert message["payload"] == {"$ref": f"#/components/schemas/{name}"}
        assert message["headers"]["properties"]["event-type"]["const"] == json_schema["x-headers"]["event-type"]
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
    sends = [op for op in doc["operations"].values() if op["action"] == "send"]
    assert len(sends) == len(PUBLIC_TOPICS)
    for op in sends:  # every reference resolves
        channel = op["channel"]["$ref"].removeprefix("#/channels/")
        assert channel in doc["channels"]
        for ref in op["messages"]:
            assert ref["$ref"].split("/")[-1] in doc["channels"][channel]["messages"]


def test_failure_codes_are_an_enum_in_the_schema() -> None:
    codes = schema_for("order.failed")["properties"]["failure_code"]["enum"]
    assert codes == list(FAILURE_CODES) and "PROCESSING_FAILED" in codes
