"""Forwarding one public request to an instance of its service and relaying the answer as it is."""

from __future__ import annotations

import asyncio
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
from shared.web.problems import Problem
from shared.web.request_id import HEADER as REQUEST_ID

log = logging.getLogger(__name__)

# RFC 9110 7.6.1 hop-by-hop headers, plus what the client library recomputes itself.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "proxy-connection",
})
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "x-admin-token", "x-request-id", "accept-encoding"}
_NOT_RETURNED = HOP_BY_HOP | {"content-length", "content-encoding", "x-request-id", "date", "server"}


def unavailable(service: str, seconds: int, detail: str | None = None) -> Problem:
    """``503 SERVICE_UNAVAILABLE`` with ``Retry-After``."""
    return Problem(
        503, "SERVICE_UNAVAILABLE", "Service unavailable",
        detail or f"the {service} service is not available; retry later",
        headers={"Retry-After": str(seconds)},
    )


def request_headers(incoming: Mapping[str, str], request_id: str, remote: str | None) -> CIMultiDict[str]:
    """What goes upstream: end-to-end headers, the request id, and who the client was."""
    headers: CIMultiDict[str] = CIMultiDict(
        (k, v) for k, v in incoming.items() if k.lower() not in _NOT_FORWARDED
    )
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
                    429, "RATE_LIMITED", "Too many requests", "the request rate limit was exceeded",
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
        for instance in upstream.candidates():
            url = URL(instance.url + request.raw_path, encoded=True)
            try:
                async with self.session.request(
                    request.method, url, data=body or None, headers=headers,
                    timeout=self._timeout(route), allow_redirects=False,
                ) as answer:
                    payload = await answer.read()
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                instance.breaker.failed()
                log.warning("instance unreachable", extra={"upstream": instance.url, "error": repr(exc)})
                continue
            except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
                raise Problem(
                    504, "UPSTREAM_TIMEOUT", "Upstream timeout",
                    f"the {upstream.service} service did not answer in time",
                ) from None
            except aiohttp.ClientError as exc:
                log.warning("upstream failed", extra={"upstream": instance.url, "error": repr(exc)})
                raise unavailable(upstream.service, self.settings.retry_after_s) from None
            instance.breaker.succeeded()
            return web.Response(status=answer.status, body=payload, headers=response_headers(answer.headers))
        raise unavailable(upstream.service, self.settings.retry_after_s)
