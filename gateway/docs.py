"""``/api/docs/openapi.json``: the services' OpenAPI documents merged into one public document.

Only the operations of the route table are kept (internal routes stay hidden). The gateway adds
what it answers itself: the ``adminToken`` security scheme (``X-Admin-Token``) and 401 on admin
routes, 400 (NUL in the path or query), 413, 429, 502, 503 and 504, with their headers. The
document is cached once every service answered; a partial one is rebuilt on the next request.

Swagger UI 5 is served from the assets of the ``swagger-ui-py`` package (no CDN, validator badge
off, no ``?url=`` loading: the page only ever shows the merged document).
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

from gateway.config import SERVICES
from gateway.routes import EVERY_SERVICE, ROUTES, Route
from shared.web.openapi import ProblemDocument, problem_schema, response_headers, to_openapi30
from shared.web.problems import PROBLEM_CONTENT_TYPE

log = logging.getLogger(__name__)
SPEC_PATH = "/api/docs/openapi.json"
STATIC_PATH = "/api/docs/static"
SECURITY_SCHEME = "adminToken"
_SECURITY_SCHEMES = {
    SECURITY_SCHEME: {
        "type": "apiKey",
        "in": "header",
        "name": "X-Admin-Token",
        "description": "The gateway's admin token (admin routes only)",
    },
}
_GATEWAY_ERRORS = {
    400: ("VALIDATION_ERROR", "Invalid request (VALIDATION_ERROR), e.g. a NUL in the path or query"),
    413: ("PAYLOAD_TOO_LARGE", "Request body over the size limit (PAYLOAD_TOO_LARGE)"),
    429: ("RATE_LIMITED", "Too many requests from this client (RATE_LIMITED); see Retry-After"),
    502: (
        "UPSTREAM_FAILED",
        (
            "The connection to the service broke after the request was sent (UPSTREAM_FAILED): "
            "it may or may not have taken effect; look the result up, or retry with the same "
            "Idempotency-Key"
        ),
    ),
    503: (
        "SERVICE_UNAVAILABLE",
        (
            "The request reached no service instance, or the service refused it before doing "
            "anything (SERVICE_UNAVAILABLE): nothing happened; retry after Retry-After seconds"
        ),
    ),
    504: (
        "UPSTREAM_TIMEOUT",
        (
            "The service did not answer in time (UPSTREAM_TIMEOUT): the outcome is unknown; look "
            "the result up, or retry with the same Idempotency-Key"
        ),
    ),
}
_UNAUTHORIZED = ("UNAUTHORIZED", "Missing or wrong X-Admin-Token (UNAUTHORIZED)")


def _problem(status: int, code: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": response_headers(status),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_schema([code])}},
    }


def _add_code(response: dict[str, Any], code: str) -> None:
    """Add ``code`` to the enum of a service's problem response the gateway may also answer."""
    schema = response.get("content", {}).get(PROBLEM_CONTENT_TYPE, {}).get("schema", {})
    for part in schema.get("allOf", []):
        enum = part.get("properties", {}).get("code", {}).get("enum")
        if enum is not None and code not in enum:
            enum.append(code)


def _decorate(operation: dict[str, Any], route: Route) -> dict[str, Any]:
    op = copy.deepcopy(operation)
    responses = op.setdefault("responses", {})
    codes = dict(_GATEWAY_ERRORS)
    if route.method not in {"POST", "PATCH", "PUT"}:
        codes.pop(413)
    if route.service == EVERY_SERVICE:  # the gateway knows which services there are
        for param in op.get("parameters", []):
            if param.get("in") == "query" and param.get("name") == "service":
                param["schema"] = {"type": "string", "enum": list(SERVICES)}
    if route.admin:
        codes[401] = _UNAUTHORIZED
        op["parameters"] = [p for p in op.get("parameters", []) if p.get("name") != "X-Admin-Token"]
        op["security"] = [{SECURITY_SCHEME: []}]
    for status, (code, text) in codes.items():
        if str(status) in responses:
            _add_code(responses[str(status)], code)
            responses[str(status)].setdefault("headers", {}).update(response_headers(status))
        else:
            responses[str(status)] = _problem(status, code, text)
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
        "info": {"title": title, "version": "1.0.0", "description": "Public API (see docs/api.md)"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": copy.deepcopy(_SECURITY_SCHEMES)},
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
                        document: dict[str, Any] = await answer.json()
                        return document
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


SWAGGER_ASSETS = (
    "swagger-ui.css",
    "index.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
)
"""The files of swagger-ui-py's Swagger UI 5 that the page loads (the rest of the package, the
editor among it, is not served)."""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>E-commerce order API</title>
  <link rel="stylesheet" type="text/css" href="{static}/swagger-ui.css">
  <link rel="stylesheet" type="text/css" href="{static}/index.css">
  <link rel="icon" type="image/png" href="{static}/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="{static}/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{static}/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script src="{static}/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
  <script>
    window.onload = function () {{
      window.ui = SwaggerUIBundle({{
        url: "{spec}",
        dom_id: "#swagger-ui",
        deepLinking: true,
        queryConfigEnabled: false,
        validatorUrl: null,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        plugins: [SwaggerUIBundle.plugins.DownloadUrl],
        layout: "StandaloneLayout"
      }});
    }};
  </script>
</body>
</html>
"""


def swagger_page() -> str:
    """The Swagger UI 5 page, pointed at the merged document, loading only the gateway's assets."""
    return _PAGE.format(static=STATIC_PATH, spec=SPEC_PATH)


def static_dir() -> str:
    """Where swagger-ui-py keeps the Swagger UI distribution."""
    return str(files("swagger_ui").joinpath("static"))
