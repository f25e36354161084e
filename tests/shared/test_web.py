"""Problem+json rendering of each error kind, request ids, health, metrics and OpenAPI."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, Field

from shared.config import BaseServiceSettings
from shared.web.app import create_base_app
from shared.web.openapi import operation, setup_openapi
from shared.web.problems import Problem, ProblemSpec
from shared.web.validation import Id, path_id, read_json


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
        settings, service="test",
        error_map={ThingError: ProblemSpec(404, "THING_NOT_FOUND", "Thing not found"),
                   DependencyDown: ProblemSpec(503, "SERVICE_UNAVAILABLE", "Service unavailable")},
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
    assert (await client.get("/api/docs")).status == 200


@pytest.mark.asyncio
@pytest.mark.parametrize("path", ["/database-down", "/stale-connection"])
async def test_database_down_is_503_with_retry_after(client: TestClient, path: str) -> None:
    resp = await client.get(path)
    await _problem(resp, 503, "SERVICE_UNAVAILABLE")
    assert resp.headers["Retry-After"] == "1"


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
