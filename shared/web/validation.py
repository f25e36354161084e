"""Turning request input into pydantic models, with every failure a ``400 VALIDATION_ERROR``.

JSON bodies are validated in *strict* mode: ``"5"`` is not an integer, ``5.0`` is not an
integer, ``true`` is not a number. Query strings are text by nature and are coerced.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from shared.web.problems import ValidationProblem

M = TypeVar("M", bound=BaseModel)

MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A positive database id (bigint)."""


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in err["loc"]) or "body"
        errors.append({"field": field, "message": err["msg"]})
    return errors


def validate_json(raw: bytes, model: type[M]) -> M:
    """Validate a JSON document against ``model`` (strict types)."""
    if not raw.strip():
        raise ValidationProblem([{"field": "body", "message": "a JSON body is required"}])
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        errors = _errors(exc)
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            raise ValidationProblem([{"field": "body", "message": "malformed JSON"}]) from None
        raise ValidationProblem(errors) from None


async def read_json(request: web.Request, model: type[M]) -> M:
    """The request body as ``model``; a body over the size limit raises ``413``."""
    return validate_json(await request.read(), model)


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model`` (unknown parameter names are ignored)."""
    params = {key: request.query.getone(key) for key in request.query}
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise ValidationProblem(_errors(exc)) from None


def path_id(request: web.Request, name: str) -> int:
    """A positive integer path parameter; anything else is a ``400``."""
    raw = request.match_info[name]
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID:
        return int(raw)
    raise ValidationProblem([{"field": name, "message": "must be a positive integer"}])
