"""``/api/docs/openapi.json``: the services' OpenAPI documents merged into one public document.

Only the operations of the route table are kept (internal routes stay hidden). The gateway adds
what it answers itself: 401 and ``X-Admin-Token`` on admin routes, 413, 429, 503 and 504. The
document is cached once every service answered; a partial one is rebuilt on the next request.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
from importlib.resources import files
from typing import Any

import aiohttp
from aiohttp import web

from gateway.routes import EVERY_SERVICE, ROUTES, Route
from shared.web.openapi import ProblemDocument, to_openapi30
from shared.web.problems import PROBLEM_CONTENT_TYPE

log = logging.getLogger(__name__)
SPEC_PATH = "/api/docs/openapi.json"
STATIC_PATH = "/api/docs/static"
_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDocument"}
_GATEWAY_ERRORS = {
    "413": "Request body over the size limit (PAYLOAD_TOO_LARGE)",
    "429": "Too many requests from this client (RATE_LIMITED); see Retry-After",
    "503": "The service behind the gateway is down (SERVICE_UNAVAILABLE); see Retry-After",
    "504": "The service behind the gateway did not answer in time (UPSTREAM_TIMEOUT)",
}
_ADMIN_HEADER = {
    "in": "header", "name": "X-Admin-Token", "required": True, "schema": {"type": "string"},
    "description": "The gateway's admin token",
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}}}


def _decorate(operation: dict[str, Any], route: Route) -> dict[str, Any]:
    op = copy.deepcopy(operation)
    responses = op.setdefault("responses", {})
    codes = dict(_GATEWAY_ERRORS)
    if route.method not in {"POST", "PATCH", "PUT"}:
        codes.pop("413")
    if route.admin:
        codes["401"] = "Missing or wrong X-Admin-Token (UNAUTHORIZED)"
        params = [p for p in op.get("parameters", []) if p.get("name") != "X-Admin-Token"]
        op["parameters"] = [*params, _ADMIN_HEADER]
    for status, text in codes.items():
        responses.setdefault(status, _problem(text))
    return op


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def _find(doc: dict[str, Any], route: Route) -> tuple[str, dict[str, Any]] | None:
    """The service's operation for a route (path parameters may be named differently)."""
    for path, operations in doc.get("paths", {}).items():
        if _shape(path) == _shape(route.path) and route.method.lower() in operations:
            return path, operations[route.method.lower()]
    return None


def merge(documents: dict[str, dict[str, Any]], title: str = "E-commerce order API") -> dict[str, Any]:
    """One OpenAPI 3.0.3 document from ``{service: document}``, public operations only."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"ProblemDocument": to_openapi30(ProblemDocument.model_json_schema())}
    for route in ROUTES:
        if route.service == EVERY_SERVICE:  # every service documents it alike: take the first found
            found = next(filter(None, (_find(doc, route) for doc in documents.values())), None)
        else:
            found = _find(documents.get(route.service) or {}, route)
        if found is None:
            continue
        path, operation = found
        paths.setdefault(path, {})[route.method.lower()] = _decorate(operation, route)
    for service, doc in documents.items():
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema and name != "ProblemDocument":
                log.warning("schema name clash in merged docs", extra={"schema": name, "service": service})
            schemas.setdefault(name, schema)
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1.0.0", "description": "Public API (see shared/contract/API.md)"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas},
    }


class Docs:
    """Fetches, merges and caches the services' documents."""

    def __init__(self, urls: dict[str, list[str]], timeout_s: float, cache_s: float) -> None:
        self.urls = urls
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.cache_s = cache_s
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self, session: aiohttp.ClientSession, service: str) -> dict[str, Any] | None:
        for base in self.urls[service]:
            try:
                async with session.get(base + SPEC_PATH, timeout=self.timeout) as answer:
                    if answer.status == 200:
                        return await answer.json()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("no OpenAPI document", extra={"upstream": base, "error": repr(exc)})
        return None

    async def document(self, session: aiohttp.ClientSession) -> tuple[dict[str, Any], list[str]]:
        """The merged document and the services whose document is missing from it."""
        async with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < self.cache_s:
                return self._cached[1], []
            names = list(self.urls)
            found = await asyncio.gather(*(self._fetch(session, n) for n in names))
            documents = {n: d for n, d in zip(names, found, strict=True) if d is not None}
            merged = merge(documents)
            missing = [n for n in names if n not in documents]
            self._cached = None if missing else (time.monotonic(), merged)
            return merged, missing


def swagger_page() -> str:
    """aiohttp-apispec's Swagger UI page, pointed at the merged document."""
    template = files("aiohttp_apispec").joinpath("static/index.html").read_text()
    return template.replace("{{ static }}", STATIC_PATH).replace("{{ path }}", SPEC_PATH)


def static_dir() -> str:
    return str(files("aiohttp_apispec").joinpath("static"))
