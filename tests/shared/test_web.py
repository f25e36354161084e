"""Problem+json rendering of each error kind, request ids, health, metrics and OpenAPI."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from urllib.parse import quote

import asyncpg
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from pydantic import BaseModel, ConfigDict, Field

from shared.config import BaseServiceSettings
from shared.web.app import create_base_app
from shared.web.cursors import ID, MOMENT, UUID, Cursor
from shared.web.openapi import camel, codes_of, openapi_document, operation, response_headers, setup_openapi
from shared.web.problems import Problem, ProblemSpec, ValidationProblem
from shared.web.validation import (
    Id,
    Int32,
    Int64,
    not_nullable,
    parse_query,
    path_id,
    read_json,
    text,
    validate_json,
)


class ThingError(Exception):
    """Root of the test context's errors."""


class ThingMissing(ThingError):
    pass


class ChargeIn(BaseModel):
    """A charge request."""

    amount: int = Field(ge=1, le=10_000_000)
    user_id: Id


class ChargeOut(BaseModel):
    """A charge response."""

    balance: int
    note: str | None = None


@operation(summary="Charge", tags=["test"], body=ChargeIn, responses={200: ChargeOut, 400: "invalid"})
async def charge(request: web.Request) -> web.Response:
    body = await read_json(request, ChargeIn)
    return web.json_response(ChargeOut(balance=body.amount).model_dump())


async def thing(request: web.Request) -> web.Response:
    raise ThingMissing(f"thing {path_id(request, 'thing_id')} does not exist")


async def conflict(_request: web.Request) -> web.Response:
    raise Problem(409, "BALANCE_LIMIT_EXCEEDED", "Balance limit exceeded", "too much", limit=10)


async def database_down(_request: web.Request) -> web.Response:
    raise asyncpg.CannotConnectNowError("the database system is starting up")


async def stale_connection(_request: web.Request) -> web.Response:
    raise asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")


class DependencyDown(Exception):
    """A service's own 'refused before doing anything' error, mapped to 503 (as order and coupon do)."""


async def dependency_down(_request: web.Request) -> web.Response:
    raise DependencyDown("the catalog is unreachable")


async def connection_lost(_request: web.Request) -> web.Response:
    raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")


async def crash(_request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail")


@pytest_asyncio.fixture
async def client() -> AsyncIterator[TestClient]:
    settings = BaseServiceSettings(port=0, access_log=False)
    app = create_base_app(
        settings,
        service="test",
        error_map={
            ThingError: ProblemSpec(404, "THING_NOT_FOUND", "Thing not found"),
            DependencyDown: ProblemSpec(503, "SERVICE_UNAVAILABLE", "Service unavailable"),
        },
    )
    app.router.add_post("/charge", charge)
    app.router.add_get("/things/{thing_id}", thing)
    app.router.add_post("/conflict", conflict)
    app.router.add_get("/crash", crash)
    app.router.add_get("/database-down", database_down)
    app.router.add_get("/stale-connection", stale_connection)
    app.router.add_get("/dependency-down", dependency_down)
    app.router.add_route("*", "/connection-lost", connection_lost)
    setup_openapi(app, title="Test API")
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def _problem(resp, status: int, code: str) -> dict:
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    body = await resp.json(content_type=None)
    assert body["status"] == status and body["code"] == code
    assert body["request_id"] == resp.headers["X-Request-ID"]
    assert "Traceback" not in str(body)
    return body


@pytest.mark.asyncio
async def test_valid_body_passes(client: TestClient) -> None:
    resp = await client.post("/charge", json={"amount": 5, "user_id": 1})
    assert resp.status == 200
    assert await resp.json() == {"balance": 5, "note": None}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "raw, field",
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b'{"amount": "5", "user_id": 1}', "amount"),
        (b'{"amount": 5.0, "user_id": 1}', "amount"),
        (b'{"amount": true, "user_id": 1}', "amount"),
        (b'{"amount": -1, "user_id": 1}', "amount"),
        (b'{"amount": 1e400, "user_id": 1}', "amount"),
        (b'{"amount": 100000000000000000000000000000, "user_id": 1}', "amount"),
        (b'{"user_id": 1}', "amount"),
        (b'{"amount": 5, "user_id": 0}', "user_id"),
        (b"[1, 2]", "body"),
    ],
)
async def test_bad_input_is_a_validation_problem(client: TestClient, raw: bytes, field: str) -> None:
    resp = await client.post("/charge", data=raw, headers={"Content-Type": "application/json"})
    body = await _problem(resp, 400, "VALIDATION_ERROR")
    fields = [e["field"] for e in body["errors"]]
    assert fields and (field in fields or field == "body"), fields


@pytest.mark.asyncio
async def test_domain_error_is_mapped(client: TestClient) -> None:
    body = await _problem(await client.get("/things/7"), 404, "THING_NOT_FOUND")
    assert body["detail"] == "thing 7 does not exist"


@pytest.mark.asyncio
async def test_bad_path_id_is_400(client: TestClient) -> None:
    await _problem(await client.get("/things/abc"), 400, "VALIDATION_ERROR")
    await _problem(await client.get("/things/99999999999999999999999"), 400, "VALIDATION_ERROR")


@pytest.mark.asyncio
async def test_problem_members_are_rendered(client: TestClient) -> None:
    body = await _problem(await client.post("/conflict"), 409, "BALANCE_LIMIT_EXCEEDED")
    assert body["limit"] == 10 and body["title"] == "Balance limit exceeded"


@pytest.mark.asyncio
async def test_unknown_route_and_method(client: TestClient) -> None:
    await _problem(await client.get("/nowhere"), 404, "NOT_FOUND")
    resp = await client.get("/charge")
    await _problem(resp, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in resp.headers["Allow"]


@pytest.mark.asyncio
async def test_body_over_one_mebibyte_is_413(client: TestClient) -> None:
    resp = await client.post("/charge", data=io.BytesIO(b"x" * (1024 * 1024 + 1)))
    await _problem(resp, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.asyncio
async def test_crash_is_500_without_internals(client: TestClient) -> None:
    body = await _problem(await client.get("/crash"), 500, "INTERNAL_ERROR")
    assert "secret" not in str(body)


@pytest.mark.asyncio
async def test_request_id_is_echoed_or_created(client: TestClient) -> None:
    resp = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert resp.headers["X-Request-ID"] != "bad id with spaces" and len(resp.headers["X-Request-ID"]) == 32


@pytest.mark.asyncio
async def test_health_and_metrics(client: TestClient) -> None:
    assert (await client.get("/health")).status == 200
    assert (await client.get("/health/ready")).status == 200
    await client.post("/charge", json={"amount": 5, "user_id": 1})
    text = await (await client.get("/metrics")).text()
    assert 'http_requests_total{method="POST",route="/charge",status="200"} 1.0' in text


@pytest.mark.asyncio
async def test_openapi_has_pydantic_schemas(client: TestClient) -> None:
    spec = await (await client.get("/api/docs/openapi.json")).json()
    assert spec["openapi"] == "3.0.3"
    post = spec["paths"]["/charge"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ChargeIn"}
    schemas = spec["components"]["schemas"]
    assert schemas["ChargeIn"]["properties"]["amount"]["maximum"] == 10_000_000
    assert schemas["ChargeOut"]["properties"]["note"]["nullable"] is True
    assert "ProblemDocument" in schemas
    # the services no longer serve aiohttp-apispec's Swagger UI 4.1.0; the gateway serves UI 5
    assert (await client.get("/api/docs")).status == 404
    assert (await client.get("/static/swagger/swagger-ui.css")).status == 404


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/database-down", "/stale-connection"])
async def test_database_down_is_503_with_retry_after(client: TestClient, path: str) -> None:
    resp = await client.get(path)
    await _problem(resp, 503, "SERVICE_UNAVAILABLE")
    assert resp.headers["Retry-After"] == "1"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path, field",
    [
        ("/things/1%00", "path"),
        ("/things/%00", "path"),
        ("/things/1?q=a%00b", "q"),
        ("/things/1?x=1&q%00=2", "q\\u0000"),
    ],
)
async def test_nul_in_path_or_query_is_400_naming_it(client: TestClient, path: str, field: str) -> None:
    body = await _problem(await client.get(path), 400, "VALIDATION_ERROR")
    assert body["errors"] == [{"field": field, "message": "must not contain NUL (\\u0000)"}]


@pytest.mark.asyncio
async def test_path_id_past_the_bigint_maximum_is_400(client: TestClient) -> None:
    await _problem(await client.get(f"/things/{2**63}"), 400, "VALIDATION_ERROR")
    await _problem(await client.get(f"/things/{2**63 - 1}"), 404, "THING_NOT_FOUND")


def test_text_refuses_nul_and_blank_names() -> None:
    class Named(BaseModel):
        name: text(1, 10, strip=True)  # type: ignore[valid-type]
        note: text(0, 10)  # type: ignore[valid-type]

    assert validate_json(b'{"name": " a ", "note": ""}', Named).name == "a"
    for raw, field in [
        (b'{"name": "a\\u0000", "note": ""}', "name"),
        (b'{"name": "a", "note": "\\u0000"}', "note"),
        (b'{"name": " \\u3000 ", "note": ""}', "name"),
        (b'{"name": "a", "note": "12345678901"}', "note"),
    ]:
        with pytest.raises(ValidationProblem) as caught:
            validate_json(raw, Named)
        assert [e["field"] for e in caught.value.members["errors"]] == [field], raw
    pattern = re.compile(Named.model_json_schema()["properties"]["name"]["pattern"])
    assert pattern.match("a") and not pattern.match(" \u3000\x85") and not pattern.match("a\x00")


def test_bounded_integers() -> None:
    class Amounts(BaseModel):
        big: Int64
        small: Int32

    assert validate_json(f'{{"big": {2**63 - 1}, "small": {2**31 - 1}}}'.encode(), Amounts).big == 2**63 - 1
    with pytest.raises(ValidationProblem) as caught:
        validate_json(f'{{"big": {2**63}, "small": {2**31}}}'.encode(), Amounts)
    assert [e["field"] for e in caught.value.members["errors"]] == ["big", "small"]


@pytest.mark.parametrize("cursor", [Cursor("h", ID), Cursor("c", MOMENT, ID), Cursor("o", MOMENT, UUID)])
def test_every_string_that_matches_a_cursor_pattern_decodes(cursor: Cursor) -> None:
    regex = re.compile(cursor.pattern)
    samples = {
        "h": ["h0", "h7fffffffffffffff", "hffffffffffffff"],
        "c": ["c0.0", "cffffffffffffff.7fffffffffffffff"],
        "o": ["o0." + "f" * 32, "offffffffffffff." + "0" * 32],
    }[cursor.prefix]
    for sample in samples:
        assert regex.match(sample) and cursor.decode(sample), sample
    for bad in ["", cursor.prefix, cursor.prefix + "8000000000000000", cursor.prefix + "G", "x0"]:
        assert not regex.match(bad)
        with pytest.raises(ValueError):
            cursor.decode(bad)


def test_cursor_round_trip() -> None:
    moment = datetime(2026, 12, 2, 12, 0, 0, 123456, tzinfo=UTC)
    order_id = str(uuid.uuid4())
    cursor = Cursor("o", MOMENT, UUID)
    assert cursor.decode(cursor.encode(moment, order_id)) == (moment, order_id)
    assert Cursor("h", ID).decode(Cursor("h", ID).encode(2**63 - 1)) == (2**63 - 1,)


def test_patch_bodies_offer_no_null() -> None:
    class Patch(BaseModel):
        model_config = ConfigDict(json_schema_extra=not_nullable(min_properties=1))

        name: str | None = None
        price: int | None = Field(default=None, ge=0)

    schema = Patch.model_json_schema()
    assert schema["minProperties"] == 1
    assert schema["properties"]["name"] == {"title": "Name", "type": "string"}
    assert schema["properties"]["price"] == {"title": "Price", "type": "integer", "minimum": 0}


def test_operation_documents_codes_headers_and_an_operation_id() -> None:
    assert codes_of("USER_NOT_FOUND or COUPON_NOT_FOUND", 404) == ["USER_NOT_FOUND", "COUPON_NOT_FOUND"]
    assert codes_of("Missing or wrong admin token", 401) == ["UNAUTHORIZED"]
    assert codes_of("invalid", 400) == ["VALIDATION_ERROR"]
    assert camel("user_orders") == "userOrders"
    assert set(response_headers(201, location=True)) == {"X-Request-ID", "Location"}
    assert set(response_headers(503)) == {"X-Request-ID", "Retry-After"}


def test_a_view_can_declare_a_path_parameter_that_is_not_a_bigint_id() -> None:
    name = {"type": "string", "pattern": "^[a-z]+-[1-9][0-9]*$"}

    @operation(summary="x", tags=["t"], responses={200: "ok"}, path={"letter_id": name})
    async def letter(_request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_get("/letters/{letter_id}", letter)
    app.router.add_post("/things/{thing_id}", charge)
    setup_openapi(app, title="t")
    doc = openapi_document(app)
    assert doc["paths"]["/letters/{letter_id}"]["get"]["parameters"] == [
        {"in": "path", "name": "letter_id", "required": True, "schema": name}
    ]
    assert doc["paths"]["/things/{thing_id}"]["post"]["parameters"][0]["schema"]["maximum"] == 2**63 - 1


@pytest.mark.asyncio
async def test_a_mapped_503_carries_retry_after(client: TestClient) -> None:
    resp = await client.get("/dependency-down")
    body = await _problem(resp, 503, "SERVICE_UNAVAILABLE")
    assert resp.headers["Retry-After"] == "1" and body["detail"] == "the catalog is unreachable"


@pytest.mark.asyncio
async def test_a_write_whose_database_connection_broke_is_502_not_503(client: TestClient) -> None:
    # the statement may have committed: a 503 ("nothing happened") would invite a duplicate
    resp = await client.post("/connection-lost")
    await _problem(resp, 502, "UPSTREAM_FAILED")
    assert "Retry-After" not in resp.headers
    # a read changed nothing whatever happened: plain 503, retry
    resp = await client.get("/connection-lost")
    await _problem(resp, 503, "SERVICE_UNAVAILABLE")
    assert resp.headers["Retry-After"] == "1"


@pytest.mark.parametrize("value", ["5.0", "5e0", "0x5", " 5", "5 ", "", "٥"])  # noqa: RUF001 (an Arabic-Indic five)
def test_an_integer_query_parameter_must_be_written_as_one(value: str) -> None:
    class Query(BaseModel):
        limit: int = Field(default=20, ge=1, le=100)
        older_than_s: int | None = None
        cursor: str | None = None

    request = make_mocked_request("GET", f"/x?limit={quote(value)}&older_than_s={quote(value)}&cursor=5.0")
    with pytest.raises(ValidationProblem) as caught:
        parse_query(request, Query)
    assert {e["field"] for e in caught.value.members["errors"]} == {"limit", "older_than_s"}
    assert parse_query(make_mocked_request("GET", "/x?limit=5&older_than_s=0&cursor=5.0"), Query).limit == 5
