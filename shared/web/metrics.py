"""Prometheus metrics: one registry per application (no process globals), exposed at ``/metrics``."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST

from shared.metrics import Metrics
from shared.web.problems import Handler


def metrics_middleware(metrics: Metrics) -> Middleware:
    """Count and time every request by its route pattern (not its raw path)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            info = request.match_info.route.resource
            route = info.canonical if info is not None else "unmatched"
            metrics.http_requests.labels(request.method, route, str(status)).inc()
            metrics.http_latency.labels(request.method, route).observe(time.perf_counter() - started)

    return middleware


async def metrics_view(metrics: Metrics, _request: web.Request) -> web.Response:
    """``GET /metrics``."""
    response = web.Response(body=metrics.render())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response


__all__ = ["Metrics", "metrics_middleware", "metrics_view"]
