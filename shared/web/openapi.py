"""OpenAPI 3.0 documents through aiohttp-apispec, with schemas taken from the pydantic models.

Views are annotated with :func:`operation`; :func:`setup_openapi` registers the spec and serves
it at ``/api/docs/openapi.json`` (the gateway merges the services' documents and serves Swagger
UI). Pydantic emits JSON Schema (OpenAPI 3.1 flavour); :func:`to_openapi30` turns it into 3.0.

The document is as strict as the server, so that a client generated from it never sends what the
server refuses: every operation has an ``operationId``; path ids are bounded integers (an order
id a UUID); each error response lists its problem ``code`` values as an enum; the response
headers (``X-Request-ID`` always, ``Location`` on creation, ``Retry-After`` on 429/503) are
declared.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from aiohttp import web
from aiohttp_apispec import AiohttpApiSpec, docs
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from pydantic import BaseModel

from shared.web.problems import PROBLEM_CONTENT_TYPE
from shared.web.validation import MAX_ID

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"
SPEC_URL = "/api/docs/openapi.json"
_MODELS_ATTR = "__openapi_models__"


class ProblemDocument(BaseModel):
    """RFC 9457 problem document (every error response)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    request_id: str | None = None
    errors: list[dict[str, str]] | None = None


class OrderFailedProblem(ProblemDocument):
    """The problem of an order whose payment failed: the order exists, ``FAILED``, compensated.

    A request refused before any order was created (e.g. a product already discontinued) has no
    ``order_id`` nor ``order_status``.
    """

    order_id: str | None = None
    order_status: Literal["FAILED"] | None = None


_CODE = re.compile(r"\b(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|UNAUTHORIZED)\b")
DEFAULT_CODES = {
    400: ["VALIDATION_ERROR"],
    401: ["UNAUTHORIZED"],
    413: ["PAYLOAD_TOO_LARGE"],
    429: ["RATE_LIMITED"],
    502: ["UPSTREAM_FAILED"],
    503: ["SERVICE_UNAVAILABLE"],
    504: ["UPSTREAM_TIMEOUT"],
}
HEADER_SCHEMAS = {
    "X-Request-ID": {
        "description": "The request id (the client's own when sane, else a new one)",
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$"},
    },
    "Location": {"description": "The URL of the created resource", "schema": {"type": "string"}},
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}
IDEMPOTENCY_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "pattern": r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$",
}
"""1..255 characters; the spec offers printable ASCII without surrounding blanks (HTTP trims them)."""


def codes_of(description: str, status: int) -> list[str]:
    """The problem codes a response description names (``DEFAULT_CODES`` when it names none)."""
    found = list(dict.fromkeys(_CODE.findall(description)))
    return found or DEFAULT_CODES.get(status, [])


def problem_schema(codes: list[str], model: type[BaseModel] = ProblemDocument) -> dict[str, Any]:
    """A problem document whose ``code`` is one of ``codes``."""
    if not codes:
        return _ref(model)
    return {"allOf": [_ref(model), {"type": "object", "properties": {"code": {"type": "string", "enum": codes}}}]}


def response_headers(status: int, location: bool = False) -> dict[str, Any]:
    """The headers a response with ``status`` carries."""
    names = ["X-Request-ID"]
    if location and status in (201, 202):
        names.append("Location")
    if status in (429, 503):
        names.append("Retry-After")
    return {name: HEADER_SCHEMAS[name] for name in names}


def camel(name: str) -> str:
    """``place_order`` -> ``placeOrder`` (an operationId from a view's name)."""
    head, *rest = name.strip("_").split("_")
    return head + "".join(part.title() for part in rest)


def to_openapi30(node: Any) -> Any:
    """Rewrite JSON Schema 2020-12 idioms (null unions, const, examples) for OpenAPI 3.0."""
    if isinstance(node, list):
        return [to_openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_openapi30(v) for k, v in node.items() if k not in {"$defs", "$schema"}}
    any_of = out.get("anyOf")
    if isinstance(any_of, list) and {"type": "null"} in any_of:
        rest = [item for item in any_of if item != {"type": "null"}]
        del out["anyOf"]
        if len(rest) == 1 and "$ref" in rest[0]:
            out["allOf"] = rest
        elif len(rest) == 1:
            out.update(rest[0])
        else:
            out["anyOf"] = rest
        out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if "examples" in out and isinstance(out["examples"], list):
        examples = out.pop("examples")
        if examples:
            out["example"] = examples[0]
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(out.get(exclusive), (int, float)) and not isinstance(out[exclusive], bool):
            out[bound] = out.pop(exclusive)
            out[exclusive] = True
    return out


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _content(model: type[BaseModel], media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": _ref(model)}}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", []))
    return [
        {"in": "query", "name": name, "required": name in required, "schema": to_openapi30(prop)}
        for name, prop in schema.get("properties", {}).items()
    ]


def operation(
    *,
    summary: str,
    tags: list[str],
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int, type[BaseModel] | str] | None = None,
    headers: Iterable[tuple[str, str] | tuple[str, str, dict[str, Any]]] = (),
    description: str | None = None,
    operation_id: str | None = None,
    location: bool = False,
    problems: dict[int, type[BaseModel]] | None = None,
    path: dict[str, dict[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Document a view: request body, query, responses (a model, or a description for errors).

    An error description names its problem codes (``USER_NOT_FOUND``...), which become the enum
    of ``code``; ``problems`` gives a status a richer problem model. ``location``: 201/202 carry
    ``Location``. The operationId defaults to the view's name in camelCase. ``path`` gives a path
    parameter's schema when :func:`path_parameter_schema`'s rule (``*_id`` a bigint) does not fit.
    """
    models: list[type[BaseModel]] = []
    operation_responses: dict[str, Any] = {}
    for status, spec in (responses or {}).items():
        entry: dict[str, Any]
        if isinstance(spec, str):
            entry = {"description": spec}
            if status >= 400:
                model = (problems or {}).get(status, ProblemDocument)
                schema = problem_schema(codes_of(spec, status), model)
                entry["content"] = {PROBLEM_CONTENT_TYPE: {"schema": schema}}
                models.append(model)
        else:
            models.append(spec)
            entry = {"description": spec.__doc__ or "", "content": _content(spec)}
        entry["headers"] = response_headers(status, location)
        operation_responses[str(status)] = entry
    extra: dict[str, Any] = {"summary": summary, "tags": tags, "responses": operation_responses}
    if description:
        extra["description"] = description
    if body is not None:
        models.append(body)
        extra["requestBody"] = {"required": True, "content": _content(body)}
    parameters = _query_parameters(query) if query is not None else []
    parameters += [
        {
            "in": "header",
            "name": header[0],
            "required": False,
            "schema": header[2] if len(header) > 2 else {"type": "string"},
            "description": header[1],
        }
        for header in headers
    ]

    parameters += [
        {"in": "path", "name": name, "required": True, "schema": schema} for name, schema in (path or {}).items()
    ]

    def decorate(func: F) -> F:
        docs(parameters=parameters, operationId=operation_id or camel(func.__name__), **extra)(func)
        setattr(func, _MODELS_ATTR, [*getattr(func, _MODELS_ATTR, []), *models])
        return func

    return decorate


def path_parameter_schema(name: str) -> dict[str, Any]:
    """What a path parameter accepts: an order id is a UUID, any other ``*_id`` a bigint id."""
    if name == "order_id":
        return {
            "type": "string",
            "format": "uuid",
            "minLength": 36,
            "maxLength": 36,
            "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        }
    if name.endswith("_id"):
        return {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}
    return {"type": "string", "minLength": 1, "pattern": "^[^\\x00/]+$"}


def _fix_operation(path: str, op: dict[str, Any]) -> None:
    op.pop("produces", None)
    declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path" and "schema" in p}
    params = []
    for param in op.get("parameters", []):
        if "type" not in param:
            params.append(param)
        elif param["name"] not in declared:  # aiohttp-apispec adds path keys in Swagger 2 style
            params.append(
                {
                    "in": param["in"],
                    "name": param["name"],
                    "required": True,
                    "schema": path_parameter_schema(param["name"]),
                }
            )
    op["parameters"] = params


class _Spec(AiohttpApiSpec):  # type: ignore[misc]  # aiohttp-apispec has no type information
    """aiohttp-apispec set to OpenAPI 3.0.3, registering the pydantic schemas it meets."""

    def __init__(self, app: web.Application, title: str, version: str) -> None:
        # no swagger_path: aiohttp-apispec's bundled Swagger UI (4.1.0) is not served; the gateway
        # serves Swagger UI 5 for the merged document
        super().__init__(url=SPEC_URL, app=None, swagger_path=None, title=title, version=version)
        self.spec = APISpec(title=title, version=version, openapi_version="3.0.3", plugins=(MarshmallowPlugin(),))
        self.plugin = self.spec.plugins[0]
        self._models: dict[str, type[BaseModel]] = {}
        self.register(app, in_place=False)

    def _register_route(self, route: web.AbstractRoute, method: str, view: Any) -> None:
        for model in getattr(view, _MODELS_ATTR, []):
            self._models[model.__name__] = model
        super()._register_route(route, method, view)

    def swagger_dict(self) -> dict[str, Any]:
        for name, model in self._models.items():
            schema = model.model_json_schema(ref_template=REF)
            for def_name, definition in schema.get("$defs", {}).items():
                if def_name not in self.spec.components._schemas:
                    self.spec.components.schema(def_name, to_openapi30(definition))
            if name not in self.spec.components._schemas:
                self.spec.components.schema(name, to_openapi30(schema))
        document: dict[str, Any] = self.spec.to_dict()
        for path, operations in document.get("paths", {}).items():
            for op in operations.values():
                _fix_operation(path, op)
        return document


_SPEC = web.AppKey("openapi_spec", _Spec)


def setup_openapi(app: web.Application, *, title: str, version: str = "1.0.0") -> None:
    """Serve the app's OpenAPI document at ``/api/docs/openapi.json``."""
    app[_SPEC] = _Spec(app, title, version)


def openapi_document(app: web.Application) -> dict[str, Any]:
    """The document of an app that is set up but not started (for tools and tests: no IO)."""
    spec = app[_SPEC]
    spec._register(app)
    document: dict[str, Any] = app["swagger_dict"]
    return document
