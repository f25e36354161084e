"""JSON Schemas of the public events, generated from the models the code uses.

``python -m shared.events.schemas`` rewrites ``docs/events/*.schema.json``; a test keeps the
committed files equal to what the models produce.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.events.orders import PUBLIC_TOPICS

OUT_DIR = Path(__file__).resolve().parents[2] / "docs" / "events"


def schema_for(topic: str) -> dict[str, Any]:
    """The JSON Schema of the value of ``topic``, with the envelope headers described."""
    model = PUBLIC_TOPICS[topic]
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{topic}.schema.json"
    schema["x-topic"] = topic
    schema["x-key"] = "order_id"
    schema["x-headers"] = {
        "event-type": model.event_type,
        "event-version": str(model.event_version),
        "event-id": "UUID, unique per event; deduplicate on it",
        "request-id": "id of the HTTP request that caused the event",
        "occurred-at": "RFC 3339 timestamp",
    }
    return schema


def render(topic: str) -> str:
    return json.dumps(schema_for(topic), indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for topic in PUBLIC_TOPICS:
        (OUT_DIR / f"{topic}.schema.json").write_text(render(topic))
        print(f"wrote docs/events/{topic}.schema.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
