"""The pieces every service's ``create_app(settings)`` starts from."""

from __future__ import annotations

import functools
import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from shared import tracing
from shared.appkeys import HEALTH, METRICS, SETTINGS
from shared.config import BaseServiceSettings
from shared.health import Health
from shared.logging import configure_logging
from shared.web.metrics import Metrics, metrics_middleware, metrics_view
from shared.web.problems import ErrorMap, problem_middleware
from shared.web.request_id import HEADER, request_id_middleware
from shared.web.validation import nul_guard_middleware


class JsonAccessLogger(AbstractAccessLogger):
    """One structured line per request, with its request id, route and latency."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={
                "request_id": response.headers.get(HEADER),
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": round(time * 1000, 2),
            },
        )


def create_base_app(
    settings: BaseServiceSettings, *, service: str, error_map: ErrorMap | None = None
) -> web.Application:
    """An application with logging, request ids, problem+json errors, health and metrics wired in.

    The service adds its routes and resources, then calls ``shared.web.openapi.setup_openapi``.
    """
    configure_logging(service, settings.instance_id, settings.log_level)
    tracing.configure(service, settings.instance_id)  # before web.Application: its instrumentation
    metrics = Metrics(service)
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            request_id_middleware,
            metrics_middleware(metrics),
            problem_middleware(error_map),
            nul_guard_middleware,
        ],
    )
    health = Health(service, settings.instance_id)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[HEALTH] = health
    app.router.add_get("/health", health.live)
    app.router.add_get("/health/ready", health.ready)
    app.router.add_get("/metrics", functools.partial(metrics_view, metrics))
    return app


def access_logger(settings: BaseServiceSettings) -> logging.Logger | None:
    """The logger for access lines, or ``None`` when they are switched off."""
    return logging.getLogger("access") if settings.access_log else None


__all__ = ["HEALTH", "METRICS", "SETTINGS", "JsonAccessLogger", "access_logger", "create_base_app"]
