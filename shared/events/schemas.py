"""JSON Schemas and the AsyncAPI 3 document of the public events, generated from the models the
code uses.

``python -m shared.events.schemas`` rewrites ``docs/events/*.schema.json`` and
``docs/events/asyncapi.json``; a test keeps the committed files equal to what the models produce.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.events.orders import PUBLIC_TOPICS

OUT_DIR = Path(__file__).resolve().parents[2] / "docs" / "events"


ASYNCAPI_FILE = "asyncapi.json"
KEY = "order_id"
HEADER_TEXT = {
    "event-id": "UUID, unique per event; deduplicate on it",
    "request-id": "id of the HTTP request that caused the event",
    "occurred-at": "RFC 3339 timestamp",
}


def schema_for(topic: str) -> dict[str, Any]:
    """The JSON Schema of the value of ``topic``, with the envelope headers described."""
    model = PUBLIC_TOPICS[topic]
    schema = model.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{topic}.schema.json"
    schema["x-topic"] = topic
    schema["x-key"] = KEY
    schema["x-headers"] = {
        "event-type": model.event_type,
        "event-version": str(model.event_version),
        **HEADER_TEXT,
    }
    return schema


def render(topic: str) -> str:
    return json.dumps(schema_for(topic), indent=2, sort_keys=True) + "\n"


def _headers_schema(event_type: str, version: int) -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "type": "object",
        "required": ["event-type", "event-version", "event-id", "request-id", "occurred-at"],
        "properties": {
            "event-type": {**text, "const": event_type},
            "event-version": {**text, "const": str(version), "description": "an integer as text"},
            "event-id": {**text, "format": "uuid", "description": HEADER_TEXT["event-id"]},
            "request-id": {**text, "description": HEADER_TEXT["request-id"]},
            "occurred-at": {**text, "format": "date-time", "description": HEADER_TEXT["occurred-at"]},
            "traceparent": {**text, "description": "W3C trace context of the order's trace, when tracing is on"},
        },
    }


def _channel_id(topic: str) -> str:
    head, *rest = topic.split(".")
    return head + "".join(part.title() for part in rest)


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the public topics, from the same models as the JSON Schemas."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for topic, model in PUBLIC_TOPICS.items():
        name = model.__name__
        payload = model.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
        schemas.update(payload.pop("$defs", {}))
        schemas[name] = payload
        messages[name] = {
            "name": model.event_type,
            "title": name,
            "summary": (model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "headers": _headers_schema(model.event_type, model.event_version),
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": f"the {KEY}"}, "bindingVersion": "0.5.0"}},
        }
        channel = _channel_id(topic)
        channels[channel] = {
            "address": topic,
            "description": f"Public topic `{topic}` (key: {KEY}); at least once, in order per key.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "title": f"order_service publishes {model.event_type}",
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "E-commerce order events",
            "version": "1.0.0",
            "description": "The public Kafka topics (docs/events.md). Consumers deduplicate on the event-id header.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "the deployment's Kafka bootstrap servers",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render_asyncapi() -> str:
    return json.dumps(asyncapi(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for topic in PUBLIC_TOPICS:
        (OUT_DIR / f"{topic}.schema.json").write_text(render(topic))
        print(f"wrote docs/events/{topic}.schema.json")
    (OUT_DIR / ASYNCAPI_FILE).write_text(render_asyncapi())
    print(f"wrote docs/events/{ASYNCAPI_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
