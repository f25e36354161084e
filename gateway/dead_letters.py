"""The public dead-letter routes over every service's own store.

Each service keeps the records IT set aside (``GET/POST /api/v1/admin/dead-letters...`` on the
service lists only its own). The gateway:

- ``GET /api/v1/admin/dead-letters?service=x``: forwarded to that service as it is.
- ``GET /api/v1/admin/dead-letters`` (no ``service``): fans out to every service with the same
  ``limit`` and ``cursor``, merges the pages newest first and returns the first ``limit``. The
  cursor names a position in one order every service shares (``failed_at`` DESC, service DESC,
  row id DESC; see ``shared.web.dead_letters``), so the gateway's ``next_cursor`` is simply the
  position of the last item it returned, and each service continues from there on the next page.
  A service that does not answer makes the whole listing fail (503/504): a page that silently
  lacked one service's items would skip them for good.
- ``POST /api/v1/admin/dead-letters/{dead_letter_id}/replay``: the id names its service
  (``balance-42``); forwarded there. An id naming no service is ``404 NOT_FOUND``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from gateway.proxy import Forwarder, Guard
from gateway.routes import Route
from gateway.upstreams import Upstream
from shared.web.dead_letter_models import DeadLetterQuery, encode_cursor, position_of
from shared.web.problems import Problem, ValidationProblem
from shared.web.validation import parse_query

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _page(response: web.Response) -> dict[str, Any]:
    assert isinstance(response.body, bytes)
    page: dict[str, Any] = orjson.loads(response.body)
    return page


def list_view(
    route: Route, upstreams: dict[str, Upstream], guard: Guard, forwarder: Callable[[], Forwarder]
) -> Handler:
    async def view(request: web.Request) -> web.StreamResponse:
        guard.check(request, route)
        query = parse_query(request, DeadLetterQuery)
        if query.service is not None:
            if query.service not in upstreams:
                raise ValidationProblem([{"field": "service", "message": f"one of {', '.join(upstreams)}"}])
            return await forwarder().forward(request, route, upstreams[query.service])
        answers = await asyncio.gather(*(forwarder().forward(request, route, up) for up in upstreams.values()))
        for answer in answers:
            if answer.status != 200:
                return answer  # a 400 for the cursor or the limit: the same from every service
        pages = [_page(answer) for answer in answers]
        items = sorted((item for page in pages for item in page["items"]), key=position_of, reverse=True)
        more = len(items) > query.limit or any(page.get("next_cursor") for page in pages)
        items = items[: query.limit]
        cursor = encode_cursor(position_of(items[-1])) if more and items else None
        return web.json_response({"items": items, "next_cursor": cursor})

    return view


def replay_view(
    route: Route, upstreams: dict[str, Upstream], guard: Guard, forwarder: Callable[[], Forwarder]
) -> Handler:
    async def view(request: web.Request) -> web.StreamResponse:
        guard.check(request, route)
        dead_letter_id = request.match_info["dead_letter_id"]
        upstream = upstreams.get(dead_letter_id.rpartition("-")[0])
        if upstream is None:
            raise Problem(404, "NOT_FOUND", "Not found", f"no dead letter {dead_letter_id!r}")
        return await forwarder().forward(request, route, upstream)

    return view


VIEWS = {"GET": list_view, "POST": replay_view}
"""The view of each dead-letter route (by method), in place of plain forwarding."""
