"""The gateway's own views: the forwarding view per route and the docs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.docs import SWAGGER_ASSETS, Docs, static_dir, swagger_page
from gateway.proxy import Forwarder, Guard
from gateway.routes import Route
from gateway.upstreams import Upstream

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def forwarding_view(route: Route, upstream: Upstream, guard: Guard, forwarder: Callable[[], Forwarder]) -> Handler:
    """The view of one public route: guard, then forward to ``upstream``."""

    async def view(request: web.Request) -> web.StreamResponse:
        guard.check(request, route)
        return await forwarder().forward(request, route, upstream)

    return view


def docs_views(docs: Docs, session: Callable[[], aiohttp.ClientSession]) -> tuple[Handler, Handler]:
    """``/api/docs`` (Swagger UI) and ``/api/docs/openapi.json`` (the merged document)."""
    page = swagger_page()

    async def ui(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def spec(_request: web.Request) -> web.Response:
        document, missing = await docs.document(session())
        headers = {"X-Docs-Missing": ",".join(missing)} if missing else None
        return web.json_response(document, headers=headers)

    return ui, spec


_ASSETS = Path(static_dir())


async def docs_asset(request: web.Request) -> web.StreamResponse:
    """One of Swagger UI's files (only those the page loads; anything else is a 404)."""
    name = request.match_info["name"]
    if name not in SWAGGER_ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(_ASSETS / name, headers={"Cache-Control": "public, max-age=86400"})
