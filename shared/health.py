"""Readiness checks (``/health/ready``: every dependency answers) and liveness (``/health``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

ReadinessCheck = Callable[[], Awaitable[None]]


class Health:
    """Named readiness checks; each raises (or times out) when its dependency is not usable."""

    def __init__(self, service: str, instance: str) -> None:
        self.service = service
        self.instance = instance
        self._checks: dict[str, ReadinessCheck] = {}

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    async def _run(self, check: ReadinessCheck) -> str:
        try:
            await asyncio.wait_for(check(), timeout=2.0)
        except Exception as exc:
            return f"down: {type(exc).__name__}"
        return "up"

    async def live(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": self.service, "instance": self.instance})

    async def ready(self, _request: web.Request) -> web.Response:
        names = list(self._checks)
        states = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
        checks = dict(zip(names, states, strict=True))
        ok = all(state == "up" for state in states)
        body = {"status": "ok" if ok else "unavailable", "service": self.service, "checks": checks}
        return web.json_response(body, status=200 if ok else 503)


__all__ = ["Health", "ReadinessCheck"]
