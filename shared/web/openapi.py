"""OpenAPI 3.0 documents through aiohttp-apispec, with schemas taken from the pydantic models.

Views are annotated with :func:`operation`; :func:`setup_openapi` registers the spec and serves
it at ``/api/docs/openapi.json`` with Swagger UI at ``/api/docs``. Pydantic emits JSON Schema
(OpenAPI 3.1 flavour); :func:`to_openapi30` turns it into what Swagger UI 3 renders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web
from aiohttp_apispec import AiohttpApiSpec, docs
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from pydantic import BaseModel

from shared.web.problems import PROBLEM_CONTENT_TYPE

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
    headers: Iterable[tuple[str, str]] = (),
    description: str | None = None,
) -> Callable[[F], F]:
    """Document a view: request body, query, responses (a model, or a description for errors)."""
    models: list[type[BaseModel]] = []
    operation_responses: dict[str, Any] = {}
    for status, spec in (responses or {}).items():
        if isinstance(spec, str):
            content = _content(ProblemDocument, PROBLEM_CONTENT_TYPE) if status >= 400 else None
            operation_responses[str(status)] = {"description": spec}
            if content:
                operation_responses[str(status)]["content"] = content
                models.append(ProblemDocument)
        else:
            models.append(spec)
            operation_responses[str(status)] = {"description": spec.__doc__ or "", "content": _content(spec)}
    extra: dict[str, Any] = {"summary": summary, "tags": tags, "responses": operation_responses}
    if description:
        extra["description"] = description
    if body is not None:
        models.append(body)
        extra["requestBody"] = {"required": True, "content": _content(body)}
    parameters = _query_parameters(query) if query is not None else []
    parameters += [
        {"in": "header", "name": name, "required": False, "schema": {"type": "string"}, "description": text}
        for name, text in headers
    ]

    def decorate(func: F) -> F:
        docs(parameters=parameters, **extra)(func)
        setattr(func, _MODELS_ATTR, [*getattr(func, _MODELS_ATTR, []), *models])
        return func

    return decorate


def _fix_operation(path: str, op: dict[str, Any]) -> None:
    op.pop("produces", None)
    params = []
    for param in op.get("parameters", []):
        if "type" in param:  # aiohttp-apispec adds path keys in Swagger 2 style
            kind = "integer" if param["name"].endswith("_id") and param["name"] != "order_id" else "string"
            param = {"in": param["in"], "name": param["name"], "required": True, "schema": {"type": kind}}
        params.append(param)
    op["parameters"] = params


class _Spec(AiohttpApiSpec):
    """aiohttp-apispec set to OpenAPI 3.0.3, registering the pydantic schemas it meets."""

    def __init__(self, app: web.Application, title: str, version: str) -> None:
        super().__init__(url=SPEC_URL, app=None, swagger_path="/api/docs", title=title, version=version)
        self.spec = APISpec(
            title=title, version=version, openapi_version="3.0.3", plugins=(MarshmallowPlugin(),)
        )
        self.plugin = self.spec.plugins[0]  # type: ignore[assignment]
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
        document = self.spec.to_dict()
        for path, operations in document.get("paths", {}).items():
            for op in operations.values():
                _fix_operation(path, op)
        return document


def setup_openapi(app: web.Application, *, title: str, version: str = "1.0.0") -> None:
    """Serve the app's OpenAPI document at ``/api/docs/openapi.json`` and Swagger UI at ``/api/docs``."""
    _Spec(app, title, version)
