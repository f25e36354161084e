"""``/api/v1/admin/dead-letters``: list a service's dead letters and replay one.

The gateway checks the admin token and serves the public routes over every service (it fans the
listing out and routes a replay by the service its id names); a service lists only its own (the
cursor: :mod:`shared.web.dead_letter_models`).

Replay: in-process, by the consumer group that set the record aside, on whichever instance got
the request (every instance runs every group's consumer). Not a re-publish to the original
topic: that would deliver the record again to EVERY consumer group of that topic (for
``order.completed``, the external data platform too), not just the one that failed.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from shared.db.dead_letters import DeadLetter, DeadLetterStore
from shared.messaging.consumer import BatchConsumer
from shared.web.dead_letter_models import (
    DEAD_LETTER_ID,
    DeadLetterPage,
    DeadLetterQuery,
    ReplayAccepted,
    decode_cursor,
    encode_cursor,
    to_out,
)
from shared.web.openapi import operation
from shared.web.problems import Problem
from shared.web.validation import parse_query
from shared.wiring import CONSUMERS, DEAD_LETTERS, REPLAYS

TAGS = ["admin: dead letters"]


@operation(
    summary="List dead letters",
    tags=TAGS,
    query=DeadLetterQuery,
    responses={200: DeadLetterPage, 400: "Invalid query (VALIDATION_ERROR)"},
    description="Records a consumer could not process and set aside, newest first. `service` filters "
    "by the service that set them aside; `cursor` is the `next_cursor` of the previous page. A dead "
    "letter stays until it is replayed; a replayed one is listed for 30 more days "
    "(`<P>_DEAD_LETTER_RETENTION_HOURS`), then removed.",
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
    summary="Replay a dead letter",
    tags=TAGS,
    path={"dead_letter_id": DEAD_LETTER_ID},
    responses={
        202: ReplayAccepted,
        404: "No such dead letter (NOT_FOUND)",
        503: "This instance does not run the consumer group (SERVICE_UNAVAILABLE); see Retry-After",
    },
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
        raise Problem(
            503,
            "SERVICE_UNAVAILABLE",
            "Service unavailable",
            f"this instance does not run consumer group {letter.group!r}; retry (another instance)",
            headers={"Retry-After": "1"},
        )
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
