"""A running coupon_service on a fresh database, with a stub of balance's internal user lookup."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from coupon_service.app import create_app
from coupon_service.config import Settings

MISSING_FROM = 900_000_000
"""The stub knows every user id below this and none from it on."""


@dataclass
class Env:
    """What the integration tests need: settings, a client session and the running apps' URLs."""

    settings: Settings
    session: aiohttp.ClientSession
    urls: list[str]
    servers: list[TestServer] = field(default_factory=list)
    lookups: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.urls[0]

    async def call(self, method: str, path: str, json: Any = None, *, instance: int = 0) -> tuple[int, Any]:
        async with self.session.request(method, self.urls[instance] + path, json=json) as resp:
            return resp.status, await resp.json(content_type=None)

    async def create_coupon(self, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": "spike",
            "discount_type": "FIXED",
            "discount_value": 1000,
            "total_quantity": 100,
            "valid_days": 7,
            **overrides,
        }
        status, coupon = await self.call("POST", "/api/v1/admin/coupons", body)
        assert status == 201, coupon
        return coupon


def _stub(lookups: list[int]) -> web.Application:
    async def user(request: web.Request) -> web.Response:
        user_id = int(request.match_info["user_id"])
        lookups.append(user_id)
        if user_id >= MISSING_FROM:
            return web.json_response({"code": "USER_NOT_FOUND", "status": 404}, status=404)
        return web.json_response({"user_id": user_id, "name": f"u{user_id}", "created_at": "2026-01-01T00:00:00Z"})

    app = web.Application()
    app.router.add_get("/internal/users/{user_id}", user)
    return app


def new_user_id() -> int:
    return uuid.uuid4().int % (MISSING_FROM - 1) + 1


StartApp = Callable[[], Awaitable[str]]


@pytest_asyncio.fixture(scope="session")
async def coupon_env(new_database, kafka_bootstrap, topic_prefix) -> AsyncIterator[Env]:
    """One coupon_service on a fresh database; ``env.start_another()`` adds an instance."""
    dsn = await new_database("coupon")
    lookups: list[int] = []
    stub = TestServer(_stub(lookups))
    await stub.start_server()
    settings = Settings(
        database_url=dsn,
        kafka_bootstrap=kafka_bootstrap,
        kafka_topic_prefix=topic_prefix,
        port=0,
        environment="test",
        access_log=False,
        balance_url=str(stub.make_url("")).rstrip("/"),
        outbox_poll_interval_s=0.1,
        db_pool_max=10,
        instance_id="coupon-a",
    )
    servers = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        env = Env(settings, session, [], servers, lookups)
        await start_instance(env, settings)
        try:
            yield env
        finally:
            for server in reversed(servers):
                await server.close()
            await stub.close()


async def start_instance(env: Env, settings: Settings) -> str:
    server = TestServer(create_app(settings))
    await server.start_server()
    env.servers.append(server)
    url = str(server.make_url("")).rstrip("/")
    env.urls.append(url)
    return url
