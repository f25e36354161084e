"""Small upstream apps on free ports that stand in for the services in gateway tests."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from pydantic import BaseModel

from gateway.routes import EVERY_SERVICE, ROUTES
from shared.web.openapi import operation, setup_openapi
from shared.web.problems import Problem, problem_middleware


class StubBody(BaseModel):
    """A request body."""

    value: int


class StubAnswer(BaseModel):
    """A response body."""

    instance: str
    value: int | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stub_app(name: str, service: str, *, delay_s: float = 0.0) -> web.Application:
    """Echoes what it received on every route of ``service``; special paths misbehave."""
    app = web.Application(middlewares=[problem_middleware()])
    app["calls"] = []
    app["state"] = {"database_down": False}

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        app["calls"].append(request)
        if delay_s:
            await asyncio.sleep(delay_s)
        if request.match_info.get("user_id") == "503":  # a bare 503, as a non-conforming service might send
            return web.json_response({"code": "SERVICE_UNAVAILABLE"}, status=503)
        if request.match_info.get("user_id") == "404":
            raise Problem(404, "USER_NOT_FOUND", "Not found", "user 404 does not exist", extra="kept")
        return web.json_response(
            {
                "instance": name,
                "method": request.method,
                "path": request.path,
                "query": request.raw_path.partition("?")[2],
                "body": body.decode(),
                "headers": dict(request.headers),
            },
            status=201 if request.method == "POST" else 200,
            headers={"X-Upstream": name, "Location": "/api/v1/somewhere"},
        )

    documented = operation(summary="stub", tags=[service], body=StubBody, responses={200: StubAnswer, 404: "not found"})
    for route in ROUTES:
        if route.service in (service, EVERY_SERVICE):
            handler = documented(_copy(echo))
            app.router.add_route(route.method, route.path, handler)
    app.router.add_get("/internal/secret", _copy(echo))
    app.router.add_get("/health", _ok)
    app.router.add_get("/health/ready", _ready)
    setup_openapi(app, title=service)
    return app


def _copy(func):  # each route needs its own function object for its docs
    async def view(request: web.Request) -> web.Response:
        return await func(request)

    return view


async def _ok(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


class Dropper:
    """An instance that reads each request whole, then closes the connection without answering
    (a service killed while handling it): the request reached it, the outcome is unknown. Its
    health probes (the gateway's readiness polls) are answered, so it stays in rotation."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            request_line = head.split(b"\r\n", 1)[0]
            if request_line.startswith(b"GET /health"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 15\r\nConnection: close\r\n\r\n{"status":"ok"}'
                )
                await writer.drain()
                writer.close()
                return
            self.requests.append(request_line)
        finally:
            writer.transport.abort()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.close()
            await server.wait_closed()


async def _ready(request: web.Request) -> web.Response:
    """Like a service's readiness: 503 while ``app["state"]["database_down"]`` (the process still answers)."""
    if request.app["state"]["database_down"]:
        return web.json_response({"status": "unavailable", "checks": {"postgres": "down"}}, status=503)
    return web.json_response({"status": "ok", "checks": {"postgres": "up"}})


@asynccontextmanager
async def running(app: web.Application, port: int | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1; yield its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
