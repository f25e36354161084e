"""The dead-letter listing's models and cursor, shared by the services' views and the gateway.

Cursor: the position of the last item seen, ``(failed_at, service, row id)``, in the one order
every service and the gateway share (newest first: ``failed_at`` DESC, then service name DESC,
then row id DESC). It is opaque to clients; its grammar is :mod:`shared.web.cursors`' (declared in
the spec: every string that matches decodes). Because every service understands it, the gateway
can pass the same cursor to each service and merge their pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, Field

from shared.db.dead_letters import DeadLetter, DeadLetterStore
from shared.messaging.envelope import rfc3339
from shared.web.cursors import ID, MOMENT, NAME, Cursor, parse_cursor

ServiceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Position = tuple[datetime, str, int]
LISTING = Cursor("d", MOMENT, NAME, ID)
DEAD_LETTER_ID = {
    "type": "string",
    "pattern": r"^[a-z][a-z0-9_]{0,31}-[0-9]{1,18}$",
    "description": "the service that set the record aside, then its number (balance-42)",
}


class DeadLetterQuery(BaseModel):
    """Filters of the dead-letter listing."""

    service: ServiceName | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, pattern=LISTING.pattern, description="next_cursor of the previous page")


class DeadLetterOut(BaseModel):
    """A record set aside by a service's consumer."""

    dead_letter_id: str
    service: str
    consumer_group: str
    topic: str
    partition: int
    offset: int
    key: str | None
    event_type: str | None
    event_id: str | None
    error_kind: str = Field(description="undecodable | deterministic")
    error: str
    failed_at: str
    replayed_at: str | None
    headers: dict[str, str]
    payload: Any = Field(description="the record's value: its JSON when it is JSON, else its text")


class DeadLetterPage(BaseModel):
    """Dead letters, newest first."""

    items: list[DeadLetterOut]
    next_cursor: str | None


class ReplayAccepted(BaseModel):
    """The record is being delivered again to its consumer."""

    dead_letter_id: str
    status: str = "REPLAYING"


def encode_cursor(position: Position) -> str:
    return LISTING.encode(*position)


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; a ``400`` for anything that is not one of ours."""
    at, service, row_id = parse_cursor(LISTING, cursor, "not a cursor of this listing")
    return at, service, row_id


def position_of(item: dict[str, Any]) -> Position:
    """The cursor position of a listed item (``failed_at`` has millisecond precision, as stored)."""
    at = datetime.fromisoformat(item["failed_at"])
    return at, item["service"], int(item["dead_letter_id"].rpartition("-")[2])


def _text(raw: bytes | None) -> str | None:
    return raw.decode(errors="replace") if raw is not None else None


def _payload(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")


def to_out(store: DeadLetterStore, letter: DeadLetter) -> DeadLetterOut:
    record = letter.record
    return DeadLetterOut(
        dead_letter_id=store.public_id(letter.id),
        service=store.service,
        consumer_group=letter.group,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=_text(record.key),
        event_type=letter.event_type,
        event_id=str(letter.event_id) if letter.event_id else None,
        error_kind=letter.error_kind,
        error=letter.error,
        failed_at=rfc3339(letter.failed_at),
        replayed_at=rfc3339(letter.replayed_at) if letter.replayed_at else None,
        headers={k: v.decode(errors="replace") for k, v in record.headers},
        payload=_payload(record.value),
    )
