"""``X-Request-ID``: take the client's id (when sane) or make one, and echo it on every response."""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from shared import tracing
from shared.context import request_id_var
from shared.web.problems import Handler

HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def new_request_id() -> str:
    """A fresh request id."""
    return uuid.uuid4().hex


def pick_request_id(value: str | None) -> str:
    """The client's id when it is short and printable, else a new one."""
    return value if value and _SANE.match(value) else new_request_id()


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request id to the context for logs and messages, and return it to the client."""
    request_id = pick_request_id(request.headers.get(HEADER))
    token = request_id_var.set(request_id)
    tracing.tag_request(request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[HEADER] = request_id
        raise
    finally:
        request_id_var.reset(token)
    response.headers[HEADER] = request_id
    return response
