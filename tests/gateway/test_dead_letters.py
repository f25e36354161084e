"""The gateway's dead-letter routes: fan-out listing merged newest first, replay routed by id."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config import SERVICES, Settings
from shared.web.dead_letter_models import decode_cursor, position_of
from shared.web.problems import Problem, problem_middleware
from tests.gateway.stubs import free_port, running

TOKEN = "test-admin-token-0123456789"
ADMIN = {"X-Admin-Token": TOKEN}
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _item(service: str, n: int, at: datetime) -> dict:
    return {
        "dead_letter_id": f"{service}-{n}",
        "service": service,
        "topic": "t",
        "partition": 0,
        "offset": n,
        "key": None,
        "event_type": "X",
        "event_id": None,
        "error": "E",
        "error_kind": "deterministic",
        "failed_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "replayed_at": None,
        "payload": {},
    }


def dead_letter_stub(service: str, items: list[dict], calls: list[str]) -> web.Application:
    """A service's own listing (as shared.web.dead_letters answers it: newest first, by cursor)."""
    app = web.Application(middlewares=[problem_middleware()])
    ordered = sorted(items, key=position_of, reverse=True)

    async def listing(request: web.Request) -> web.Response:
        calls.append(request.path_qs)
        limit = int(request.query.get("limit", "50"))
        rest = ordered
        if "cursor" in request.query:
            before = decode_cursor(request.query["cursor"])
            rest = [i for i in ordered if position_of(i) < before]
        page = rest[:limit]
        more = len(rest) > limit
        return web.json_response({"items": page, "next_cursor": "opaque" if more else None})

    async def replay(request: web.Request) -> web.Response:
        calls.append(request.path)
        if request.match_info["dead_letter_id"] not in {i["dead_letter_id"] for i in items}:
            raise Problem(404, "NOT_FOUND", "Not found", "no such dead letter")
        return web.json_response(
            {"dead_letter_id": request.match_info["dead_letter_id"], "status": "REPLAYING"}, status=202
        )

    app.router.add_get("/api/v1/admin/dead-letters", listing)
    app.router.add_post("/api/v1/admin/dead-letters/{dead_letter_id}/replay", replay)
    return app


class Stack:
    def __init__(self) -> None:
        self.stack = AsyncExitStack()
        self.calls: dict[str, list[str]] = {s: [] for s in SERVICES}
        self.urls: dict[str, str] = {}

    async def serve(self, data: dict[str, list[dict]], down: tuple[str, ...] = ()) -> TestClient:
        for service in SERVICES:
            if service in down:
                self.urls[service] = f"http://127.0.0.1:{free_port()}"
                continue
            app = dead_letter_stub(service, data.get(service, []), self.calls[service])
            self.urls[service] = await self.stack.enter_async_context(running(app))
        settings = Settings(
            **{f"{s}_urls": u for s, u in self.urls.items()},
            port=0,
            admin_token=TOKEN,
            access_log=False,
            environment="test",
        )
        client = TestClient(TestServer(create_app(settings)))
        await client.start_server()
        self.stack.push_async_callback(client.close)
        return client


@pytest_asyncio.fixture
async def stack():
    found = Stack()
    async with found.stack:
        yield found


def _data() -> dict[str, list[dict]]:
    data: dict[str, list[dict]] = {}
    for k, service in enumerate(SERVICES):
        data[service] = [_item(service, n, T0 + timedelta(seconds=n * 7 + k)) for n in range(1, 6)]
    data["coupon"].append(_item("coupon", 99, T0 + timedelta(seconds=7)))  # same failed_at as balance-1 + ...
    data["order"].append(_item("order", 98, T0 + timedelta(seconds=7 + 2)))  # ties broken by service, id
    return data


@pytest.mark.asyncio
async def test_listing_merges_every_service_newest_first_over_pages(stack: Stack) -> None:
    data = _data()
    gw = await stack.serve(data)
    seen: list[dict] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "4"} | ({"cursor": cursor} if cursor else {})
        resp = await gw.get("/api/v1/admin/dead-letters", params=params, headers=ADMIN)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert len(body["items"]) <= 4
        seen.extend(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 20
    expected = sorted((i for items in data.values() for i in items), key=position_of, reverse=True)
    assert [i["dead_letter_id"] for i in seen] == [i["dead_letter_id"] for i in expected]
    assert all(stack.calls[s] for s in SERVICES)  # fanned out to every service


@pytest.mark.asyncio
async def test_listing_of_one_service_goes_to_that_service_only(stack: Stack) -> None:
    gw = await stack.serve(_data())
    resp = await gw.get("/api/v1/admin/dead-letters", params={"service": "coupon", "limit": "2"}, headers=ADMIN)
    assert resp.status == 200
    body = await resp.json()
    assert [i["service"] for i in body["items"]] == ["coupon", "coupon"]
    assert stack.calls["coupon"] and not any(stack.calls[s] for s in SERVICES if s != "coupon")
    resp = await gw.get("/api/v1/admin/dead-letters", params={"service": "nope"}, headers=ADMIN)
    assert resp.status == 400 and (await resp.json())["code"] == "VALIDATION_ERROR"
    resp = await gw.get("/api/v1/admin/dead-letters", params={"cursor": "not-a-cursor"}, headers=ADMIN)
    assert resp.status == 400


@pytest.mark.asyncio
async def test_replay_is_routed_by_the_service_its_id_names(stack: Stack) -> None:
    gw = await stack.serve(_data())
    resp = await gw.post("/api/v1/admin/dead-letters/catalog-3/replay", headers=ADMIN)
    assert resp.status == 202
    assert (await resp.json())["dead_letter_id"] == "catalog-3"
    assert stack.calls["catalog"] == ["/api/v1/admin/dead-letters/catalog-3/replay"]
    resp = await gw.post("/api/v1/admin/dead-letters/catalog-1000/replay", headers=ADMIN)
    assert resp.status == 404 and (await resp.json())["code"] == "NOT_FOUND"
    resp = await gw.post("/api/v1/admin/dead-letters/nobody-3/replay", headers=ADMIN)
    assert resp.status == 404 and (await resp.json())["code"] == "NOT_FOUND"
    assert not any(stack.calls[s] for s in SERVICES if s != "catalog")


@pytest.mark.asyncio
async def test_dead_letter_routes_need_the_admin_token(stack: Stack) -> None:
    gw = await stack.serve(_data())
    for headers in ({}, {"X-Admin-Token": "wrong"}):
        assert (await gw.get("/api/v1/admin/dead-letters", headers=headers)).status == 401
        assert (await gw.post("/api/v1/admin/dead-letters/catalog-3/replay", headers=headers)).status == 401
    assert not any(stack.calls.values())


@pytest.mark.asyncio
async def test_listing_fails_when_a_service_does_not_answer(stack: Stack) -> None:
    gw = await stack.serve(_data(), down=("ranking",))
    resp = await gw.get("/api/v1/admin/dead-letters", headers=ADMIN)
    assert resp.status == 503
    assert "Retry-After" in resp.headers
