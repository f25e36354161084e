"""The shared balance client (shared.clients.balance) against a local stand-in of balance's
internal API, and the cursor codec at the HTTP edge (shared.web.cursors)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from shared.clients.balance import BalanceClient, BalanceUnavailableError
from shared.context import request_id_var
from shared.cursors import ID, MOMENT, Cursor
from shared.web.cursors import parse_cursor
from shared.web.problems import ValidationProblem

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class DirectoryDown(Exception):
    pass


@pytest_asyncio.fixture(loop_scope="session")
async def balance() -> AsyncIterator[tuple[str, list[str | None]]]:
    seen: list[str | None] = []

    async def user(request: web.Request) -> web.Response:
        seen.append(request.headers.get("X-Request-ID"))
        user_id = int(request.match_info["user_id"])
        if user_id == 1:
            return web.json_response({"user_id": 1, "name": "ann", "created_at": T0.isoformat()})
        if user_id == 500:
            return web.json_response({}, status=500)
        return web.json_response({}, status=404)

    app = web.Application()
    app.router.add_get("/internal/users/{user_id}", user)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/", seen
    await runner.cleanup()


@pytest.mark.asyncio(loop_scope="session")
async def test_the_balance_client_finds_users_and_forwards_the_request_id(balance) -> None:
    url, seen = balance
    async with aiohttp.ClientSession() as session:
        client = BalanceClient(session, url)
        token = request_id_var.set("req-7")
        try:
            assert await client.find(1) == ("ann", T0)
        finally:
            request_id_var.reset(token)
        assert await client.find(2) is None
        with pytest.raises(BalanceUnavailableError, match="answered 500"):
            await client.find(500)
        mine = BalanceClient(session, url, unavailable=DirectoryDown)
        with pytest.raises(DirectoryDown):
            await mine.find(500)
    assert seen[:2] == ["req-7", None]


@pytest.mark.asyncio(loop_scope="session")
async def test_an_unreachable_balance_is_the_services_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    async with aiohttp.ClientSession() as session:
        with pytest.raises(DirectoryDown, match="unreachable"):
            await BalanceClient(session, f"http://127.0.0.1:{port}", unavailable=DirectoryDown).find(1)


def test_a_cursor_round_trips_and_a_malformed_one_is_a_400() -> None:
    owned = Cursor("c", MOMENT, ID)
    text = owned.encode(T0, 42)
    assert parse_cursor(owned, text) == (T0, 42)
    with pytest.raises(ValidationProblem) as caught:
        parse_cursor(owned, "x" + text)
    assert caught.value.status == 400
    with pytest.raises(ValidationProblem):
        parse_cursor(owned, text + ".1", "not a cursor of this listing")


def test_the_web_module_re_exports_the_codec() -> None:
    from shared.web import cursors

    assert cursors.Cursor is Cursor and cursors.ID is ID
