"""``/api/v1/admin/dead-letters``: list a service's dead letters and replay one.

The gateway checks the admin token and serves the public routes over every service (it fans the
listing out and routes a replay by the service its id names); a service lists only its own.

Cursor: the position of the last item seen, ``(failed_at, service, row id)``, in the one order
every service and the gateway share (newest first: ``failed_at`` DESC, then service name DESC,
then row id DESC). It is opaque to clients (base64url JSON). Because every service understands
it, the gateway can pass the same cursor to each service and merge their pages.

Replay: in-process, by the consumer group that set the record aside, on whichever instance got
the request (every instance runs every group's consumer). Not a re-publish to the original
topic: that would deliver the record again to EVERY consumer group of that topic (for
``order.completed``, the external data platform too), not just the one that failed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any

import orjson
from aiohttp import web
from pydantic import BaseModel, Field

from shared.db.dead_letters import DeadLetter, DeadLetterStore
from shared.messaging.consumer import BatchConsumer
from shared.messaging.envelope import rfc3339
from shared.web.openapi import operation
from shared.web.problems import Problem, ValidationProblem
from shared.web.validation import parse_query
from shared.wiring import CONSUMERS, DEAD_LETTERS, REPLAYS

TAGS = ["admin: dead letters"]
ServiceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Position = tuple[datetime, str, int]


class DeadLetterQuery(BaseModel):
    """Filters of the dead-letter listing."""

    service: ServiceName | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=500)


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
    at, service, row_id = position
    raw = orjson.dumps({"t": rfc3339(at), "s": service, "n": row_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; a ``400`` for anything that is not one of ours."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at = datetime.fromisoformat(data["t"].replace("Z", "+00:00"))
        service, row_id = data["s"], data["n"]
        if at.tzinfo is None or not isinstance(service, str) or type(row_id) is not int or not 0 < row_id < 2**63:
            raise ValueError
        return at, service, row_id
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, AttributeError):
        raise ValidationProblem([{"field": "cursor", "message": "not a cursor of this listing"}]) from None


def position_of(item: dict[str, Any]) -> Position:
    """The cursor position of a listed item (``failed_at`` has millisecond precision, as stored)."""
    at = datetime.fromisoformat(item["failed_at"].replace("Z", "+00:00"))
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
        dead_letter_id=store.public_id(letter.id), service=store.service, consumer_group=letter.group,
        topic=record.topic, partition=record.partition, offset=record.offset, key=_text(record.key),
        event_type=letter.event_type, event_id=str(letter.event_id) if letter.event_id else None,
        error_kind=letter.error_kind, error=letter.error, failed_at=rfc3339(letter.failed_at),
        replayed_at=rfc3339(letter.replayed_at) if letter.replayed_at else None,
        headers={k: v.decode(errors="replace") for k, v in record.headers},
        payload=_payload(record.value),
    )


@operation(
    summary="List dead letters", tags=TAGS, query=DeadLetterQuery,
    responses={200: DeadLetterPage, 400: "Invalid query (VALIDATION_ERROR)"},
    description="Records a consumer could not process and set aside, newest first. `service` filters "
    "by the service that set them aside; `cursor` is the `next_cursor` of the previous page.",
)
async def list_dead_letters(request: web.Request) -> web.Response:
    query = parse_query(request, DeadLetterQuery)
    store = request.app[DEAD_LETTERS]
    before = decode_cursor(query.cursor) if query.cursor else None
    letters: list[DeadLetter] = []
    if query.service in (None, store.service):
        letters = await store.page(query.limit + 1, before)
    items = [to_out(store, letter) for letter in letters[: query.limit]]
    cursor = None
    if len(letters) > query.limit:
        last = letters[query.limit - 1]
        cursor = encode_cursor((last.failed_at, store.service, last.id))
    return web.json_response(text=DeadLetterPage(items=items, next_cursor=cursor).model_dump_json())


@operation(
    summary="Replay a dead letter", tags=TAGS,
    responses={202: ReplayAccepted, 404: "No such dead letter (NOT_FOUND)",
               503: "This instance does not run the consumer group (SERVICE_UNAVAILABLE); see Retry-After"},
    description="Delivers the original record (key, value, headers) again to the consumer group that "
    "set it aside, through its inbox like any record (a record that was in fact applied stays applied "
    "once). `replayed_at` is set once it has been processed; failing again, it is set aside again as a "
    "new dead letter.",
)
async def replay_dead_letter(request: web.Request) -> web.Response:
    public_id = request.match_info["dead_letter_id"]
    store = request.app[DEAD_LETTERS]
    row_id = store.row_id(public_id)
    letter = await store.get(row_id) if row_id is not None else None
    if letter is None:
        raise Problem(404, "NOT_FOUND", "Not found", f"no dead letter {public_id!r}")
    consumer = _consumer(request.app, letter.group)
    if consumer is None:  # an instance started without that consumer (catalog consume_saga=false)
        raise Problem(503, "SERVICE_UNAVAILABLE", "Service unavailable",
                      f"this instance does not run consumer group {letter.group!r}; retry (another instance)",
                      headers={"Retry-After": "1"})
    task = asyncio.create_task(_replay(store, consumer, letter), name=f"replay-{public_id}")
    replays = request.app[REPLAYS]
    replays.add(task)
    task.add_done_callback(replays.discard)
    body = ReplayAccepted(dead_letter_id=public_id)
    return web.json_response(text=body.model_dump_json(), status=202)


async def _replay(store: DeadLetterStore, consumer: BatchConsumer, letter: DeadLetter) -> None:
    await consumer.replay(letter.record)
    await store.mark_replayed(letter.id)


def _consumer(app: web.Application, group: str) -> BatchConsumer | None:
    return next((c for c in app[CONSUMERS] if c.group_id == group), None)


def setup_dead_letter_routes(app: web.Application) -> None:
    """The admin routes of the dead-letter store (a service with consumers calls it)."""
    app.router.add_get("/api/v1/admin/dead-letters", list_dead_letters)
    app.router.add_post("/api/v1/admin/dead-letters/{dead_letter_id}/replay", replay_dead_letter)


__all__ = ["decode_cursor", "encode_cursor", "position_of", "setup_dead_letter_routes"]
