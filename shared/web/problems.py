"""RFC 9457 problem documents and the middleware that renders every error as one.

Services raise :class:`Problem` (or map their own domain errors to one through an
:class:`ErrorMap`); anything else becomes a ``500 INTERNAL_ERROR`` without a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from shared.context import current_request_id

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
RETRY_AFTER_S = "1"
"""``Retry-After`` of a 503 that does not name its own: API.md promises one on every 503."""


class Problem(Exception):
    """An error that is rendered as an RFC 9457 problem document."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **members: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.members = members


class ValidationProblem(Problem):
    """``400 VALIDATION_ERROR`` with the list of offending fields."""

    def __init__(self, errors: list[dict[str, str]], detail: str | None = None) -> None:
        super().__init__(
            400,
            "VALIDATION_ERROR",
            "Invalid request",
            detail or "the request is not valid",
            errors=errors,
        )


def not_found(code: str, detail: str) -> Problem:
    """A ``404`` problem with the given code."""
    return Problem(404, code, "Not found", detail)


@dataclass(frozen=True)
class ProblemSpec:
    """How a domain error class is shown over HTTP."""

    status: int
    code: str
    title: str


ErrorMap = Mapping[type[Exception], ProblemSpec]


def problem_response(problem: Problem) -> web.Response:
    """Render a :class:`Problem` as ``application/problem+json``; a 503 always has ``Retry-After``
    (a 503 means the request was refused before anything happened: the client may simply retry)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail or problem.title,
        "code": problem.code,
        "request_id": current_request_id(),
    }
    body.update(problem.members)
    headers = problem.headers
    if problem.status == 503 and not any(k.lower() == "retry-after" for k in headers):
        headers = {**headers, "Retry-After": RETRY_AFTER_S}
    return web.Response(
        status=problem.status,
        body=orjson.dumps(body, default=str),
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def _from_domain(exc: Exception, error_map: ErrorMap) -> Problem | None:
    for cls in type(exc).__mro__:
        spec = error_map.get(cls)
        if spec is not None:
            members = dict(getattr(exc, "problem_members", {}) or {})
            return Problem(spec.status, spec.code, spec.title, str(exc) or spec.title, **members)
    return None


_HTTP_CODES = {
    400: ("VALIDATION_ERROR", "Invalid request"),
    401: ("UNAUTHORIZED", "Unauthorized"),
    404: ("NOT_FOUND", "Not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    413: ("PAYLOAD_TOO_LARGE", "Payload too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"),
}


def _from_http(exc: web.HTTPException) -> Problem:
    code, title = _HTTP_CODES.get(exc.status, ("HTTP_ERROR", exc.reason))
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else title
    if exc.status == 413:
        detail = "the request body is larger than the limit"
    headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
    return Problem(exc.status, code, title, detail, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_UNAVAILABLE = (
    ConnectionError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.ConnectionDoesNotExistError,
)


def _unavailable(exc: BaseException) -> bool:
    """The database is down or restarting (refused, shut down, connection lost): a 503, not a 500.

    A pooled connection that was idle when the server shut down is left by asyncpg in its
    error-consuming state; its next query fails with ``InternalClientError: cannot switch to
    state ...; another operation (2) is in progress``. The pool's reset then closes it on
    release, so the request that met it is the only one to fail: that is an unavailable
    database too.
    """
    if isinstance(exc, asyncpg.InternalClientError) and "another operation" in str(exc):
        return True
    return isinstance(exc, _UNAVAILABLE)


# The connection broke while a statement was in flight: the database may have committed it.
_BROKEN_MID_STATEMENT = (asyncpg.ConnectionDoesNotExistError, ConnectionResetError, BrokenPipeError)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods without effects (RFC 9110 9.2.1): whatever broke during one, nothing happened."""


def _unavailable_problem(request: web.Request, exc: BaseException) -> Problem:
    """503 (nothing happened, retry) unless a write may have been carried out: a connection that broke
    mid-statement during an unsafe method is ``502 UPSTREAM_FAILED`` (outcome unknown), never a 503
    that would invite a plain retry of a POST that in fact went through."""
    if request.method not in SAFE_METHODS and isinstance(exc, _BROKEN_MID_STATEMENT):
        return Problem(
            502,
            "UPSTREAM_FAILED",
            "Outcome unknown",
            "the database connection broke during the request; it may or may not have taken effect:"
            " look the result up, or retry with the same Idempotency-Key",
        )
    return Problem(
        503, "SERVICE_UNAVAILABLE", "Service unavailable", "a backing service (database) is unavailable; retry shortly"
    )


def problem_middleware(error_map: ErrorMap | None = None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Turn every exception into a problem document; log unexpected ones with their trace."""
    mapping: ErrorMap = error_map or {}

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Problem as problem:
            return problem_response(problem)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return problem_response(_from_http(exc))
        except Exception as exc:
            domain = _from_domain(exc, mapping)
            if domain is not None:
                return problem_response(domain)
            if _unavailable(exc):
                log.warning("dependency unavailable: %r", exc, extra={"path": request.path})
                return problem_response(_unavailable_problem(request, exc))
            log.exception("unhandled error", extra={"path": request.path})
            return problem_response(Problem(500, "INTERNAL_ERROR", "Internal error", "an unexpected error occurred"))

    return middleware
