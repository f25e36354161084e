"""Forwarding one public request to an instance of its service and relaying the answer as it is.

What the gateway answers when forwarding fails says what the client may assume (API.md "Errors"):

- ``503 SERVICE_UNAVAILABLE`` + ``Retry-After``: the request reached no instance (every connect was
  refused or timed out), so nothing happened and a plain retry is safe. A service's own 503 (it
  refused before doing anything) is relayed, with ``Retry-After`` added if it had none.
- ``502 UPSTREAM_FAILED``: the connection broke after the request was sent; the service may or may
  not have carried it out. Never a 503 there: a client that retried a POST would pay twice.
- ``504 UPSTREAM_TIMEOUT``: no answer in time; the outcome is unknown as well.

A connect failure moves on to the next instance for any method (nothing was sent). A safe method
(GET, HEAD, OPTIONS) whose connection broke after sending is retried once on another instance; any
other method never is.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway.config import Settings
from gateway.ratelimit import RateLimiter, client_address, retry_after
from gateway.routes import Route
from gateway.upstreams import Upstream
from shared.context import current_request_id
from shared.web.problems import SAFE_METHODS, Problem
from shared.web.request_id import HEADER as REQUEST_ID

log = logging.getLogger(__name__)

# RFC 9110 7.6.1 hop-by-hop headers, plus what the client library recomputes itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "x-admin-token", "x-request-id", "accept-encoding"}
_NOT_RETURNED = HOP_BY_HOP | {"content-length", "content-encoding", "x-request-id", "date", "server"}


def unavailable(service: str, seconds: int, detail: str | None = None) -> Problem:
    """``503 SERVICE_UNAVAILABLE`` with ``Retry-After``."""
    return Problem(
        503,
        "SERVICE_UNAVAILABLE",
        "Service unavailable",
        detail or f"the {service} service is not available; retry later",
        headers={"Retry-After": str(seconds)},
    )


def upstream_failed(service: str) -> Problem:
    """``502 UPSTREAM_FAILED``: the request reached the service, whose connection then broke."""
    return Problem(
        502,
        "UPSTREAM_FAILED",
        "Upstream failed",
        f"the connection to the {service} service broke after the request was sent; it may or may not"
        " have taken effect: look the result up, or retry with the same Idempotency-Key",
    )


def request_headers(incoming: Mapping[str, str], request_id: str, remote: str | None) -> CIMultiDict[str]:
    """What goes upstream: end-to-end headers, the request id, and who the client was."""
    headers: CIMultiDict[str] = CIMultiDict((k, v) for k, v in incoming.items() if k.lower() not in _NOT_FORWARDED)
    headers[REQUEST_ID] = request_id
    if remote:
        prior = incoming.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {remote}" if prior else remote
    return headers


def response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """What comes back: every end-to-end header of the service's answer."""
    return CIMultiDict((k, v) for k, v in upstream.items() if k.lower() not in _NOT_RETURNED)


class Guard:
    """Checks before forwarding: rate limit, admin token, body size (cheap, no IO)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.trusted = settings.trusted_networks
        self.limiter = (
            RateLimiter(settings.rate_limit_rps, settings.rate_limit_burst) if settings.rate_limit_rps else None
        )

    def check(self, request: web.Request, route: Route) -> None:
        if self.limiter is not None:
            client = client_address(request.remote, request.headers.get("X-Forwarded-For"), self.trusted)
            wait = self.limiter.take(client)
            if wait > 0:
                raise Problem(
                    429,
                    "RATE_LIMITED",
                    "Too many requests",
                    "the request rate limit was exceeded",
                    headers={"Retry-After": retry_after(wait)},
                )
        if route.admin and not self._admin_ok(request.headers.get("X-Admin-Token")):
            raise Problem(401, "UNAUTHORIZED", "Unauthorized", "a valid X-Admin-Token header is required")
        length = request.content_length
        if length is not None and length > self.settings.max_body_bytes:
            raise Problem(413, "PAYLOAD_TOO_LARGE", "Payload too large", "the request body is larger than the limit")

    def _admin_ok(self, given: str | None) -> bool:
        expected = self.settings.admin_token
        if not expected or given is None:
            return False
        return hmac.compare_digest(given.encode(), expected.encode())


class Forwarder:
    """Sends a request to the next usable instance; connection failures move on to the next one."""

    def __init__(self, session: aiohttp.ClientSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    def _timeout(self, route: Route) -> aiohttp.ClientTimeout:
        total = self.settings.order_create_timeout_s if route.long_running else self.settings.timeout_s
        return aiohttp.ClientTimeout(total=total, sock_connect=self.settings.connect_timeout_s)

    async def forward(self, request: web.Request, route: Route, upstream: Upstream) -> web.Response:
        body = await request.read()
        headers = request_headers(request.headers, current_request_id() or "", request.remote)
        retries = 1 if request.method in SAFE_METHODS else 0
        reached = False  # some instance got the request: never answer 503 then
        for instance in upstream.candidates():
            url = URL(instance.url + request.raw_path, encoded=True)
            try:
                async with self.session.request(
                    request.method,
                    url,
                    data=body or None,
                    headers=headers,
                    timeout=self._timeout(route),
                    allow_redirects=False,
                ) as answer:
                    payload = await answer.read()
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                instance.breaker.failed()
                log.warning("instance unreachable", extra={"upstream": instance.url, "error": repr(exc)})
                continue
            except (TimeoutError, aiohttp.ServerTimeoutError):
                raise Problem(
                    504,
                    "UPSTREAM_TIMEOUT",
                    "Upstream timeout",
                    f"the {upstream.service} service did not answer in time",
                ) from None
            except aiohttp.ClientError as exc:
                instance.breaker.failed()
                reached = True
                log.warning(
                    "upstream connection broke after sending",
                    extra={"upstream": instance.url, "error": repr(exc), "retry": retries > 0},
                )
                if retries:
                    retries -= 1
                    continue
                raise upstream_failed(upstream.service) from None
            instance.breaker.succeeded()
            return web.Response(status=answer.status, body=payload, headers=self._answer_headers(answer))
        if reached:
            raise upstream_failed(upstream.service)
        raise unavailable(upstream.service, self.settings.retry_after_s)

    def _answer_headers(self, answer: aiohttp.ClientResponse) -> CIMultiDict[str]:
        """The service's headers; its 503 (refused before doing anything) gets a ``Retry-After``."""
        headers = response_headers(answer.headers)
        if answer.status == 503 and "Retry-After" not in headers:
            headers["Retry-After"] = str(self.settings.retry_after_s)
        return headers
