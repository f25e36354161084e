"""The gateway against stub upstreams on free ports."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from pydantic import ValidationError

from gateway.app import create_app
from gateway.config import KNOWN_TOKENS, SERVICES, Settings, trusted_networks
from gateway.ratelimit import client_address
from gateway.routes import ROUTES
from tests.gateway.stubs import Dropper, free_port, running, stub_app

TOKEN = "test-admin-token-0123456789"
CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "api.md"


class Cluster:
    """Stub services (one instance each unless told) and a gateway client in front of them."""

    def __init__(self) -> None:
        self.stack = AsyncExitStack()
        self.apps: dict[str, list] = {}
        self.urls: dict[str, list[str]] = {}

    async def stub(self, service: str, count: int = 1, delay_s: float = 0.0) -> None:
        for i in range(count):
            app = stub_app(f"{service}-{i}", service, delay_s=delay_s)
            url = await self.stack.enter_async_context(running(app))
            self.apps.setdefault(service, []).append(app)
            self.urls.setdefault(service, []).append(url)

    async def gateway(self, **overrides) -> TestClient:
        for service in SERVICES:
            if service not in self.urls:  # nobody listens there
                self.urls[service] = [f"http://127.0.0.1:{free_port()}"]
        values = {f"{s}_urls": ",".join(u) for s, u in self.urls.items()}
        values |= {"port": 0, "admin_token": TOKEN, "access_log": False, "environment": "test"}
        settings = Settings(**(values | overrides))
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        self.stack.push_async_callback(client.close)
        return client


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[Cluster]:
    found = Cluster()
    async with found.stack:
        yield found


@pytest.mark.asyncio
async def test_forwards_method_path_query_body_and_headers(cluster: Cluster) -> None:
    await cluster.stub("balance")
    gw = await cluster.gateway()
    resp = await gw.post(
        "/api/v1/users/7/balance/charge?x=1&y=%20z",
        data=b'{"amount": 5}',
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": "k-1",
            "Prefer": "respond-async",
            "X-Request-ID": "req-abc",
            "Connection": "keep-alive",
            "X-Admin-Token": "nope",
        },
    )
    assert resp.status == 201
    body = await resp.json()
    assert body["method"] == "POST"
    assert body["path"] == "/api/v1/users/7/balance/charge"
    assert body["query"] == "x=1&y=%20z"
    assert body["body"] == '{"amount": 5}'
    sent = {k.lower(): v for k, v in body["headers"].items()}
    assert sent["idempotency-key"] == "k-1"
    assert sent["prefer"] == "respond-async"
    assert sent["content-type"] == "application/json"
    assert sent["x-request-id"] == "req-abc"
    assert "x-admin-token" not in sent
    assert resp.headers["X-Request-ID"] == "req-abc"
    assert resp.headers["X-Upstream"] == "balance-0"
    assert resp.headers["Location"] == "/api/v1/somewhere"


@pytest.mark.asyncio
async def test_request_id_is_created_when_missing(cluster: Cluster) -> None:
    await cluster.stub("catalog")
    gw = await cluster.gateway()
    resp = await gw.get("/api/v1/products?limit=5")
    assert resp.status == 200
    rid = resp.headers["X-Request-ID"]
    assert rid
    sent = {k.lower(): v for k, v in (await resp.json())["headers"].items()}
    assert sent["x-request-id"] == rid


@pytest.mark.asyncio
async def test_problem_documents_pass_through(cluster: Cluster) -> None:
    await cluster.stub("balance")
    gw = await cluster.gateway()
    resp = await gw.get("/api/v1/users/404", headers={"X-Request-ID": "r-404"})
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["code"] == "USER_NOT_FOUND"
    assert body["extra"] == "kept"


@pytest.mark.asyncio
async def test_unknown_route_and_wrong_method(cluster: Cluster) -> None:
    await cluster.stub("balance")
    gw = await cluster.gateway()
    resp = await gw.get("/api/v1/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["code"] == "NOT_FOUND"
    resp = await gw.get("/internal/secret")
    assert resp.status == 404
    resp = await gw.delete("/api/v1/users/1")
    assert resp.status == 405
    assert resp.content_type == "application/problem+json"


@pytest.mark.asyncio
async def test_round_robin_over_instances(cluster: Cluster) -> None:
    await cluster.stub("order", count=2)
    gw = await cluster.gateway()
    seen = [(await (await gw.get("/api/v1/orders/abc")).json())["instance"] for _ in range(6)]
    assert seen.count("order-0") == 3 and seen.count("order-1") == 3
    assert all(a != b for a, b in itertools.pairwise(seen))


@pytest.mark.asyncio
async def test_down_instance_is_skipped(cluster: Cluster) -> None:
    await cluster.stub("order", count=1)
    cluster.urls["order"].append(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    gw = await cluster.gateway()
    for _ in range(8):
        resp = await gw.post("/api/v1/orders", json={"user_id": 1})
        assert resp.status == 201
        assert (await resp.json())["instance"] == "order-0"
    # every POST reached the live instance exactly once (no duplicate on failover)
    assert len(cluster.apps["order"][0]["calls"]) == 8


@pytest.mark.asyncio
async def test_all_instances_down_is_503_fast_with_retry_after(cluster: Cluster) -> None:
    gw = await cluster.gateway()  # no stubs: every service is down
    for _ in range(5):
        started = time.monotonic()
        resp = await gw.get("/api/v1/rankings/top-products")
        elapsed = time.monotonic() - started
        assert resp.status == 503
        body = await resp.json()
        assert body["code"] == "SERVICE_UNAVAILABLE"
        assert int(resp.headers["Retry-After"]) >= 1
        assert elapsed < 1.0


@pytest.mark.asyncio
async def test_post_to_no_reachable_instance_is_503_with_retry_after(cluster: Cluster) -> None:
    cluster.urls["order"] = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    gw = await cluster.gateway()
    resp = await gw.post("/api/v1/orders", json={"user_id": 1})
    assert resp.status == 503 and (await resp.json())["code"] == "SERVICE_UNAVAILABLE"
    assert int(resp.headers["Retry-After"]) >= 1


async def dropper(cluster: Cluster, service: str) -> Dropper:
    """An instance of ``service`` (listed first) that drops each connection after reading the request."""
    found = Dropper()
    url = await cluster.stack.enter_async_context(found.running())
    cluster.urls[service] = [url, *cluster.urls.get(service, [])]
    return found


@pytest.mark.asyncio
async def test_connection_broken_after_the_request_was_sent_is_502_not_503(cluster: Cluster) -> None:
    dropped = await dropper(cluster, "order")
    gw = await cluster.gateway()
    resp = await gw.post("/api/v1/orders", json={"user_id": 1})
    assert resp.status == 502, await resp.text()
    body = await resp.json()
    assert body["code"] == "UPSTREAM_FAILED" and "Retry-After" not in resp.headers
    assert dropped.requests == [b"POST /api/v1/orders HTTP/1.1"]  # it did reach the service


@pytest.mark.asyncio
async def test_post_is_never_retried_on_another_instance(cluster: Cluster) -> None:
    await cluster.stub("order", count=1)
    dropped = await dropper(cluster, "order")  # first in turn: the first request goes there
    gw = await cluster.gateway()
    resp = await gw.post("/api/v1/orders", json={"user_id": 1})
    assert resp.status == 502
    assert len(dropped.requests) == 1 and cluster.apps["order"][0]["calls"] == []


@pytest.mark.asyncio
async def test_get_whose_connection_broke_is_retried_once_on_another_instance(cluster: Cluster) -> None:
    await cluster.stub("order", count=1)
    dropped = await dropper(cluster, "order")
    gw = await cluster.gateway(circuit_failures=100)  # keep the dropper in turn
    resp = await gw.get("/api/v1/orders/abc")  # the dropper's turn first
    assert resp.status == 200 and (await resp.json())["instance"] == "order-0"
    assert dropped.requests == [b"GET /api/v1/orders/abc HTTP/1.1"]
    assert len(cluster.apps["order"][0]["calls"]) == 1


@pytest.mark.asyncio
async def test_get_retried_only_once(cluster: Cluster) -> None:
    first = await dropper(cluster, "order")
    second = await dropper(cluster, "order")
    third = await dropper(cluster, "order")
    gw = await cluster.gateway(circuit_failures=100)
    resp = await gw.get("/api/v1/orders/abc")
    assert resp.status == 502 and (await resp.json())["code"] == "UPSTREAM_FAILED"
    assert [len(d.requests) for d in (third, second, first)] == [1, 1, 0]


@pytest.mark.asyncio
async def test_a_service_503_is_relayed_with_retry_after(cluster: Cluster) -> None:
    await cluster.stub("balance")
    gw = await cluster.gateway()
    resp = await gw.get("/api/v1/users/503/balance")
    assert resp.status == 503 and int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["code"] == "SERVICE_UNAVAILABLE"


@pytest.mark.asyncio
async def test_service_back_after_cooldown(cluster: Cluster) -> None:
    port = free_port()
    cluster.urls["ranking"] = [f"http://127.0.0.1:{port}"]
    gw = await cluster.gateway(circuit_cooldown_s=0.2, circuit_failures=1)
    assert (await gw.get("/api/v1/rankings/top-products")).status == 503
    async with running(stub_app("ranking-0", "ranking"), port=port):
        deadline = time.monotonic() + 10
        status = 503
        while status != 200 and time.monotonic() < deadline:
            status = (await gw.get("/api/v1/rankings/top-products")).status
        assert status == 200


@pytest.mark.asyncio
async def test_slow_upstream_is_504(cluster: Cluster) -> None:
    await cluster.stub("coupon", delay_s=2.0)
    gw = await cluster.gateway(timeout_s=0.3)
    resp = await gw.get("/api/v1/coupons/1")
    assert resp.status == 504
    assert (await resp.json())["code"] == "UPSTREAM_TIMEOUT"


@pytest.mark.asyncio
async def test_order_creation_has_the_longer_timeout(cluster: Cluster) -> None:
    await cluster.stub("order", delay_s=0.6)
    gw = await cluster.gateway(timeout_s=0.3, order_create_timeout_s=5.0)
    assert (await gw.post("/api/v1/orders", json={})).status == 201
    assert (await gw.get("/api/v1/orders/x")).status == 504


@pytest.mark.asyncio
async def test_body_over_one_mib_is_413(cluster: Cluster) -> None:
    await cluster.stub("balance")
    gw = await cluster.gateway()
    big = io.BytesIO(b"x" * (1024 * 1024 + 1))
    resp = await gw.post("/api/v1/users", data=big, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert (await resp.json())["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks():
        for _ in range(20):
            yield b"y" * 65536

    resp = await gw.post("/api/v1/users", data=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert cluster.apps["balance"][0]["calls"] == []


@pytest.mark.asyncio
async def test_admin_routes_need_the_token(cluster: Cluster) -> None:
    await cluster.stub("catalog")
    await cluster.stub("coupon")
    gw = await cluster.gateway()
    for headers in ({}, {"X-Admin-Token": "wrong"}, {"X-Admin-Token": ""}):
        resp = await gw.post("/api/v1/admin/products", json={"name": "x"}, headers=headers)
        assert resp.status == 401
        assert (await resp.json())["code"] == "UNAUTHORIZED"
        resp = await gw.patch("/api/v1/admin/products/1", json={}, headers=headers)
        assert resp.status == 401
    assert cluster.apps["catalog"][0]["calls"] == []
    resp = await gw.post("/api/v1/admin/coupons", json={}, headers={"X-Admin-Token": TOKEN})
    assert resp.status == 201


@pytest.mark.asyncio
async def test_saga_view_routes_go_to_the_order_service_with_the_token(cluster: Cluster) -> None:
    await cluster.stub("order")
    gw = await cluster.gateway()
    paths = (
        "/api/v1/admin/orders/0b8e2d47-8f1c-4c1e-9d43-3f8f5a1f0e11/saga",
        "/api/v1/admin/sagas?step=COMPENSATING&older_than_s=60&limit=5",
    )
    for path in paths:
        for headers in ({}, {"X-Admin-Token": "wrong"}):
            resp = await gw.get(path, headers=headers)
            assert resp.status == 401 and (await resp.json())["code"] == "UNAUTHORIZED"
    assert cluster.apps["order"][0]["calls"] == []
    for path in paths:
        resp = await gw.get(path, headers={"X-Admin-Token": TOKEN})
        assert resp.status == 200
        got = await resp.json()
        assert got["path"] + ("?" + got["query"] if got["query"] else "") == path
        assert "x-admin-token" not in {k.lower() for k in got["headers"]}


@pytest.mark.asyncio
async def test_rate_limit_is_429_with_retry_after(cluster: Cluster) -> None:
    await cluster.stub("catalog")
    gw = await cluster.gateway(rate_limit_rps=1.0, rate_limit_burst=3)
    statuses = [(await gw.get("/api/v1/products")).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    resp = await gw.get("/api/v1/products")
    assert resp.status == 429
    assert (await resp.json())["code"] == "RATE_LIMITED"
    assert int(resp.headers["Retry-After"]) >= 1


@pytest.mark.asyncio
async def test_rate_limit_is_off_by_default(cluster: Cluster) -> None:
    await cluster.stub("catalog")
    gw = await cluster.gateway()
    statuses = {(await gw.get("/api/v1/products")).status for _ in range(150)}
    assert statuses == {200}


def test_production_needs_an_admin_token() -> None:
    with pytest.raises(ValidationError):
        Settings(environment="production", admin_token="")
    with pytest.raises(ValidationError):
        Settings(environment="production", admin_token="short")
    assert Settings(environment="production", admin_token="x" * 32).admin_token


@pytest.mark.asyncio
async def test_ready_reports_each_service(cluster: Cluster) -> None:
    for service in ("balance", "catalog", "coupon", "order"):
        await cluster.stub(service)
    gw = await cluster.gateway()
    resp = await gw.get("/health/ready")
    assert resp.status == 503
    checks = (await resp.json())["checks"]
    assert checks["ranking"].startswith("down") and checks["balance"] == "up"
    assert (await gw.get("/health")).status == 200
    assert (await gw.get("/metrics")).status == 200


def contract_routes() -> set[tuple[str, str]]:
    text = CONTRACT.read_text()
    found = set(re.findall(r"`(GET|POST|PATCH|PUT|DELETE) (/api/v1/[^`?\s]+)", text))
    assert len(found) >= 18
    return {(path, method.lower()) for method, path in found}


def test_route_table_is_the_contract() -> None:
    assert {(r.path, r.method.lower()) for r in ROUTES} == contract_routes()


@pytest.mark.asyncio
async def test_merged_openapi_document(cluster: Cluster) -> None:
    for service in SERVICES:
        await cluster.stub(service)
    gw = await cluster.gateway()
    resp = await gw.get("/api/docs/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"] == "3.0.3"
    assert "/internal/secret" not in doc["paths"]
    schemas = doc["components"]["schemas"]
    for path, method in contract_routes():
        op = doc["paths"][path][method]
        assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/StubBody")
        assert {"200", "502", "503", "504"} <= op["responses"].keys()
        assert "UPSTREAM_FAILED" in op["responses"]["502"]["description"]
        if path.startswith("/api/v1/admin/"):
            # the token is the adminToken apiKey scheme (X-Admin-Token), so Swagger UI offers Authorize
            assert "401" in op["responses"] and op["security"] == [{"adminToken": []}]
            assert doc["components"]["securitySchemes"]["adminToken"]["name"] == "X-Admin-Token"
    for ref in ("StubBody", "StubAnswer", "ProblemDocument"):
        assert ref in schemas
    page = await gw.get("/api/docs")
    assert page.status == 200 and "/api/docs/openapi.json" in await page.text()
    assert (await gw.get("/api/docs/static/swagger-ui.css")).status == 200


@pytest.mark.asyncio
async def test_swagger_ui_5_is_served_offline(cluster: Cluster) -> None:
    gw = await cluster.gateway()
    page = await (await gw.get("/api/docs")).text()
    assert "validatorUrl: null" in page and "queryConfigEnabled: false" in page
    assets = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert len(assets) >= 4 and all(a.startswith("/api/docs/static/") for a in assets), assets
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", page), "the page loads nothing from outside"
    for asset in assets:
        resp = await gw.get(asset)
        assert resp.status == 200, asset
        body = await resp.read()
        if asset.endswith(".css"):
            assert not re.search(rb"url\((?!\s*[\"']?data:)", body), f"{asset} loads nothing from outside"
        if asset.endswith("swagger-ui-bundle.js"):
            version = re.search(rb'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"', body)
            assert version is not None and int(version.group(1)) == 5, "Swagger UI 5"
    for other in ("/api/docs/static/swagger-editor.js", "/api/docs/static/..%2Fcore.py", "/api/docs/static/index.html"):
        assert (await gw.get(other)).status == 404, other


@pytest.mark.asyncio
async def test_coupon_creation_has_the_longer_timeout(cluster: Cluster) -> None:
    await cluster.stub("coupon", delay_s=0.6)
    gw = await cluster.gateway(timeout_s=0.3, order_create_timeout_s=5.0)
    admin = {"X-Admin-Token": TOKEN}
    assert (await gw.post("/api/v1/admin/coupons", json={}, headers=admin)).status == 201
    assert (await gw.get("/api/v1/coupons/1")).status == 504


@pytest.mark.asyncio
async def test_one_service_down_keeps_the_gateway_serving_the_others(cluster: Cluster) -> None:
    """Ranking's database is down (its process still answers /health): the gateway stays ready
    for Kubernetes (/health/serving), answers 503 + Retry-After for ranking's routes only, and
    /health/ready still reports ranking as down; when ranking is ready again its routes work."""
    for service in SERVICES:
        await cluster.stub(service)
    ranking = cluster.apps["ranking"][0]
    ranking["state"]["database_down"] = True
    gw = await cluster.gateway(readiness_interval_s=0.05)
    deadline = time.monotonic() + 10
    while (await gw.get("/api/v1/rankings/top-products")).status != 503 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    resp = await gw.get("/api/v1/rankings/top-products")
    assert resp.status == 503
    assert (await resp.json())["code"] == "SERVICE_UNAVAILABLE"
    assert int(resp.headers["Retry-After"]) >= 1
    calls = len(ranking["calls"])
    assert (await gw.get("/api/v1/rankings/top-products")).status == 503
    assert len(ranking["calls"]) == calls, "a service that is not ready gets no requests"
    assert (await gw.get("/api/v1/products")).status == 200
    assert (await gw.post("/api/v1/users", json={"name": "x"})).status == 201
    serving = await gw.get("/health/serving")
    assert serving.status == 200
    assert (await serving.json())["services"]["ranking"] == "down"
    ready = await gw.get("/health/ready")
    assert ready.status == 503
    checks = (await ready.json())["checks"]
    assert checks["ranking"].startswith("down") and checks["catalog"] == "up"

    ranking["state"]["database_down"] = False
    deadline = time.monotonic() + 10
    while (await gw.get("/api/v1/rankings/top-products")).status != 200 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert (await gw.get("/api/v1/rankings/top-products")).status == 200
    assert (await gw.get("/health/ready")).status == 200


@pytest.mark.parametrize(
    ("remote", "forwarded", "trusted", "client"),
    [
        ("203.0.113.9", None, "", "203.0.113.9"),
        # no trusted proxies configured: X-Forwarded-For is anyone's to write
        ("203.0.113.9", "198.51.100.1", "", "203.0.113.9"),
        # the peer is not a trusted proxy: its header is ignored
        ("203.0.113.9", "198.51.100.1", "10.0.0.0/8", "203.0.113.9"),
        # from the Ingress controller: the rightmost untrusted hop is the client
        ("10.1.2.3", "198.51.100.1", "10.0.0.0/8", "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1, 10.9.9.9", "10.0.0.0/8", "198.51.100.1"),
        ("10.1.2.3", "garbage, 198.51.100.1", "10.0.0.0/8", "198.51.100.1"),
        ("10.1.2.3", "", "10.0.0.0/8", "10.1.2.3"),
    ],
)
def test_client_address_believes_forwarded_for_only_from_trusted_proxies(remote, forwarded, trusted, client) -> None:
    assert client_address(remote, forwarded, trusted_networks(trusted)) == client


@pytest.mark.asyncio
async def test_rate_limit_keys_on_forwarded_for_from_a_trusted_proxy(cluster: Cluster) -> None:
    """Behind a trusted proxy each forwarded client has its own bucket; from an untrusted peer the
    header cannot be used to get a fresh bucket per request."""
    await cluster.stub("catalog")
    gw = await cluster.gateway(rate_limit_rps=0.01, rate_limit_burst=2, trusted_proxies="127.0.0.1/32")

    def get(client: str):
        return gw.get("/api/v1/products", headers={"X-Forwarded-For": client})

    assert [(await get("198.51.100.1")).status for _ in range(3)] == [200, 200, 429]
    assert (await get("198.51.100.2")).status == 200  # another client behind the same proxy

    untrusted = await cluster.gateway(rate_limit_rps=0.01, rate_limit_burst=2, trusted_proxies="10.0.0.0/8")
    statuses = [
        (await untrusted.get("/api/v1/products", headers={"X-Forwarded-For": f"198.51.100.{i}"})).status
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]


def test_production_refuses_the_repositorys_placeholder_tokens() -> None:
    for token in KNOWN_TOKENS:
        with pytest.raises(ValidationError, match="placeholder"):
            Settings(environment="production", admin_token=token)
    with pytest.raises(ValidationError):
        Settings(trusted_proxies="10.0.0.0/8, not-an-address")
