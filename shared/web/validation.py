"""Turning request input into pydantic models, with every failure a ``400 VALIDATION_ERROR``.

JSON bodies are validated in *strict* mode: ``"5"`` is not an integer, ``5.0`` is not an
integer, ``true`` is not a number. Query strings are text by nature and are coerced.

Every integer the API accepts is bounded by the column that stores it (``Int64``/``Int32``,
``Id``), and every string is free of NUL (``Text``), which PostgreSQL cannot store in ``text``:
without these an out-of-range value or a ``\u0000`` reached asyncpg and came back as a 500.
The bounds are declared in the schemas, so the OpenAPI document says what the server enforces.
:func:`nul_guard_middleware` refuses NUL in the path and the query string of every request.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote

from aiohttp import web
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, StringConstraints, ValidationError

from shared.web.problems import Handler, ValidationProblem

M = TypeVar("M", bound=BaseModel)

MAX_INT64 = 2**63 - 1
"""The largest PostgreSQL ``bigint``."""
MAX_INT32 = 2**31 - 1
"""The largest PostgreSQL ``integer``."""
MAX_ID = MAX_INT64
NO_NUL = r"^[^\x00]*$"
"""JSON Schema pattern of a string without NUL (PostgreSQL text cannot hold one)."""
_SPACE = r"\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL_NOT_BLANK = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"
"""Without NUL and not only whitespace (for a name that the server strips: what any regex engine
counts as whitespace is excluded from the one required character)."""

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
"""A positive database id (bigint)."""
Int64 = Annotated[int, Field(ge=0, le=MAX_INT64)]
"""A non-negative integer stored in a ``bigint`` column (money, quantities)."""
Int32 = Annotated[int, Field(ge=0, le=MAX_INT32)]
"""A non-negative integer stored in an ``integer`` column."""


def _storable(moment: datetime) -> datetime:
    """Refuse the moments asyncpg cannot store as themselves: it writes ``datetime.min``/``max``
    as -infinity/infinity (read back naive), and one whose UTC form leaves years 1..9999 overflows."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be within years 1..9999 in UTC") from None
    if utc.replace(tzinfo=None) in (datetime.min, datetime.max):
        raise ValueError("must be within years 1..9999 in UTC")
    return moment


YEARS_1970_9998 = r"^(?:19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2})-"
Moment = Annotated[AwareDatetime, AfterValidator(_storable), Field(json_schema_extra={"pattern": YEARS_1970_9998})]
"""An RFC 3339 time with an offset, stored in a ``timestamptz``. The spec offers years 1970..9998
(any offset keeps those storable); the server accepts every moment it can store."""


def text(min_length: int, max_length: int, *, strip: bool = False, **extra: Any) -> Any:
    """A string type of ``min_length..max_length`` characters without NUL."""
    return Annotated[
        str,
        StringConstraints(
            min_length=min_length,
            max_length=max_length,
            strip_whitespace=strip,
            pattern=NO_NUL_NOT_BLANK if strip else NO_NUL,
        ),
        Field(**extra),
    ]


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


_DIGITS = re.compile(r"^[+-]?[0-9]+$")


@functools.cache
def _integer_fields(model: type[BaseModel]) -> frozenset[str]:
    """The query fields the spec declares as integers."""

    def is_integer(prop: dict[str, Any]) -> bool:
        return prop.get("type") == "integer" or any(is_integer(p) for p in prop.get("anyOf", []))

    return frozenset(name for name, prop in model.model_json_schema().get("properties", {}).items() if is_integer(prop))


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model`` (unknown parameter names are ignored).

    Text is coerced, except that an integer must be written as one: pydantic's lax mode would take
    ``5.0`` for ``5``, which the spec (``type: integer``) does not offer.
    """
    params = {key: request.query.getone(key) for key in request.query}
    not_integers = [name for name in _integer_fields(model) if name in params and not _DIGITS.match(params[name])]
    if not_integers:
        raise ValidationProblem([{"field": name, "message": "must be an integer"} for name in sorted(not_integers)])
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


def _nul_field(request: web.Request) -> str | None:
    """The name of the path or query part that holds a NUL, if any."""
    path, _, query = request.raw_path.partition("?")
    if "%00" in path or "\x00" in path:
        return "path"
    for pair in query.split("&"):
        if "%00" in pair or "\x00" in pair:
            return unquote(pair.partition("=")[0]).replace("\x00", "\\u0000") or "query"
    return None


@web.middleware
async def nul_guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``400 VALIDATION_ERROR`` for a NUL in the path or the query string, before any view runs.

    A path id with NUL would be a 400 anyway, but a string path or query parameter (an order id,
    a cursor, a filter) could carry it to the database. One substring test per request.
    """
    if "%00" in request.raw_path or "\x00" in request.raw_path:
        field = _nul_field(request)
        if field is not None:
            raise ValidationProblem([{"field": field, "message": "must not contain NUL (\\u0000)"}])
    return await handler(request)


def not_nullable(*, min_properties: int | None = None) -> Any:
    """``json_schema_extra`` for a patch body whose optional fields may be absent but never null.

    Pydantic writes ``X | None = None`` as ``anyOf: [X, null]``; the server refuses ``null``, so
    the schema must not offer it. ``min_properties`` declares "at least one field".
    """

    def extra(schema: dict[str, Any]) -> None:
        for prop in schema.get("properties", {}).values():
            any_of = prop.pop("anyOf", None)
            if any_of is not None:
                rest = [item for item in any_of if item != {"type": "null"}]
                prop.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
            if prop.get("default", 0) is None:
                del prop["default"]
        if min_properties is not None:
            schema["minProperties"] = min_properties

    return extra
