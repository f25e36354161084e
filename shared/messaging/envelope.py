"""The message envelope: a JSON value plus the headers of the event contract.

Every message is a :class:`Message` subclass naming its ``event_type`` and ``event_version``.
On the wire: key = the aggregate id as text, value = the model as one JSON object (which also
carries ``event_id`` and ``occurred_at``), headers ``event-type``, ``event-version``,
``event-id``, ``request-id`` and ``occurred-at``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import tracing


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Message(BaseModel):
    """Base of every message exchanged over Kafka."""

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_serialization_defaults_required=True)

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    occurred_at: datetime = Field(default_factory=utcnow)


def rfc3339(moment: datetime) -> str:
    """``2026-11-24T12:00:00.123Z`` style text for a timezone-aware datetime."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass(frozen=True)
class Outgoing:
    """A message on its way to a topic."""

    topic: str
    key: str
    message: Message
    request_id: str | None = None
    traceparent: str | None = None
    """A saved trace context, the parent when nothing better is current (``shared.tracing``)."""

    def headers(self) -> dict[str, str]:
        msg = self.message
        headers = {
            "event-type": msg.event_type,
            "event-version": str(msg.event_version),
            "event-id": str(msg.event_id),
            "occurred-at": rfc3339(msg.occurred_at),
        }
        if self.request_id:
            headers["request-id"] = self.request_id
        if tracing.ENABLED:
            headers.update(tracing.message_headers(self.key, self.traceparent))
        return headers

    def value(self) -> bytes:
        return self.message.model_dump_json().encode()


@dataclass(frozen=True)
class Incoming:
    """A decoded message as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: str | None
    message: Message
    request_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: Any = field(default=None, compare=False, repr=False)
    """The record as received (key, value and headers as bytes), kept to set it aside if need be."""

    @property
    def event_id(self) -> uuid.UUID:
        return self.message.event_id


class PoisonMessage(Exception):
    """A record that cannot be decoded into a known message; it goes to the dead-letter topic."""


class MessageRegistry:
    """Maps ``event-type`` headers to message classes."""

    def __init__(self, models: Iterable[type[Message]]) -> None:
        self._models: dict[str, type[Message]] = {}
        for model in models:
            if model.event_type in self._models:
                raise ValueError(f"duplicate event type {model.event_type}")
            self._models[model.event_type] = model

    def __contains__(self, event_type: str) -> bool:
        return event_type in self._models

    def decode(self, record: Any) -> Incoming:
        """Decode an aiokafka ``ConsumerRecord``; raise :class:`PoisonMessage` when impossible."""
        try:
            headers = {k: (v or b"").decode() for k, v in (record.headers or ())}
        except UnicodeDecodeError:
            raise PoisonMessage("headers are not UTF-8") from None
        event_type = headers.get("event-type")
        model = self._models.get(event_type or "")
        if model is None:
            raise PoisonMessage(f"unknown event type {event_type!r}")
        try:
            message = model.model_validate_json(record.value or b"")
        except ValidationError as exc:
            raise PoisonMessage(f"invalid {event_type}: {exc.error_count()} errors") from None
        key = record.key.decode(errors="replace") if record.key is not None else None
        return Incoming(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            message=message,
            request_id=headers.get("request-id"),
            headers=headers,
            raw=record,
        )
