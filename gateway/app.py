"""``create_app(settings)``: the gateway application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from gateway import dead_letters
from gateway.config import SERVICES, Settings
from gateway.docs import SPEC_PATH, STATIC_PATH, Docs
from gateway.proxy import Forwarder, Guard
from gateway.readiness import ReadinessMonitor, serving_view
from gateway.routes import EVERY_SERVICE, ROUTES
from gateway.upstreams import build_upstream
from gateway.views import docs_asset, docs_views, forwarding_view
from shared.web.app import HEALTH, create_base_app

SESSION = web.AppKey("session", aiohttp.ClientSession)
FORWARDER = web.AppKey("forwarder", Forwarder)
MONITOR = web.AppKey("readiness_monitor", ReadinessMonitor)
SERVING = web.AppKey("serving", dict)


def session_ctx(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    """One pooled client session for every upstream call, closed on exit."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        connector = aiohttp.TCPConnector(
            limit=settings.pool_limit,
            limit_per_host=settings.pool_limit_per_host,
            keepalive_timeout=30,
            ttl_dns_cache=300,
        )
        session = aiohttp.ClientSession(connector=connector, auto_decompress=True, cookie_jar=aiohttp.DummyCookieJar())
        # aiohttp silently re-sends GET/PUT/DELETE... once to the SAME instance when the connection
        # drops; the Forwarder decides retries itself (a safe method once, on another instance), so
        # one request is never sent more than twice. No public switch exists for this (aiohttp 3.14).
        session._retry_connection = False
        app[SESSION] = session
        app[FORWARDER] = Forwarder(session, settings)
        yield
        await session.close()

    return ctx


def _monitor_ctx(monitor: ReadinessMonitor, interval_s: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """Poll the services' readiness for the life of the app."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(monitor.run(interval_s), name="readiness-monitor")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


async def _set(flag: dict[str, bool], value: bool) -> None:
    flag["ok"] = value


def create_app(settings: Settings) -> web.Application:
    """The gateway: the public routes of the contract, forwarded by configuration."""
    app = create_base_app(settings, service="gateway")
    app.cleanup_ctx.append(session_ctx(settings))
    upstreams = {
        name: build_upstream(name, settings.urls(name), settings.circuit_failures, settings.circuit_cooldown_s)
        for name in SERVICES
    }
    guard = Guard(settings)
    forwarder = lambda: app[FORWARDER]  # noqa: E731 - the forwarder exists once the app runs
    for route in ROUTES:
        if route.service == EVERY_SERVICE:
            view = dead_letters.VIEWS[route.method](route, upstreams, guard, forwarder)
        else:
            view = forwarding_view(route, upstreams[route.service], guard, forwarder)
        app.router.add_route(route.method, route.path, view)
    session = lambda: app[SESSION]  # noqa: E731 - the session exists once the app runs
    monitor = ReadinessMonitor(
        upstreams.values(),
        session,
        poll_timeout_s=settings.readiness_timeout_s,
        check_timeout_s=settings.health_timeout_s,
    )
    app[MONITOR] = monitor
    for name in SERVICES:
        app[HEALTH].add_check(name, monitor.check(name))
    app.cleanup_ctx.append(_monitor_ctx(monitor, settings.readiness_interval_s))
    app[SERVING] = serving = {"ok": False}
    app.on_startup.append(lambda _app: _set(serving, True))
    app.on_shutdown.append(lambda _app: _set(serving, False))
    app.router.add_get("/health/serving", serving_view(monitor, lambda: serving["ok"]))
    docs = Docs({n: settings.urls(n) for n in SERVICES}, settings.timeout_s, settings.docs_cache_s)
    ui, spec = docs_views(docs, session)
    app.router.add_get("/api/docs", ui)
    app.router.add_get(SPEC_PATH, spec)
    app.router.add_get(STATIC_PATH + "/{name}", docs_asset)
    return app
