"""The gateway's view of which service instances can serve, from their own ``/health/ready``.

A service is ready when its database answers (``/health/ready``), not merely when its process
does (``/health``): an instance whose PostgreSQL is down would fail every request. A background
task polls every instance every ``readiness_interval_s``; an instance is taken out of rotation
after ``FAILURES`` failed probes in a row (one slow probe under load does not take it out) and
back in after one good probe. Routes of a service with no ready instance answer ``503
SERVICE_UNAVAILABLE`` with ``Retry-After`` at once, while every other route goes on: the gateway
itself stays ready (its Kubernetes readiness probe is ``/health/serving``), so one service down
never takes the whole API out of the Ingress.

``/health/ready`` keeps the contract's meaning: it probes every service now and is 503 listing the
ones with no ready instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

import aiohttp
from aiohttp import web

from gateway.upstreams import Instance, Upstream

log = logging.getLogger(__name__)
FAILURES = 2


class ReadinessMonitor:
    """Probes ``/health/ready`` of every instance and keeps ``Instance.ready`` up to date."""

    def __init__(
        self,
        upstreams: Iterable[Upstream],
        session: Callable[[], aiohttp.ClientSession],
        *,
        poll_timeout_s: float,
        check_timeout_s: float,
    ) -> None:
        self.upstreams = {u.service: u for u in upstreams}
        self._session = session
        self._poll_timeout = aiohttp.ClientTimeout(total=poll_timeout_s)
        self._check_timeout = aiohttp.ClientTimeout(total=check_timeout_s)
        self._failed: dict[str, int] = {}

    async def _ready(self, instance: Instance, timeout: aiohttp.ClientTimeout) -> bool:
        try:
            async with self._session().get(f"{instance.url}/health/ready", timeout=timeout) as answer:
                return answer.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _poll(self, instance: Instance) -> None:
        self._record(instance, await self._ready(instance, self._poll_timeout))

    def _record(self, instance: Instance, ok: bool) -> None:
        failed = 0 if ok else self._failed.get(instance.url, 0) + 1
        self._failed[instance.url] = failed
        ready = failed < FAILURES
        if ready != instance.ready:
            log.warning(
                "instance %s",
                "ready" if ready else "not ready",
                extra={"upstream": instance.url, "failed_probes": failed},
            )
        instance.ready = ready

    async def probe(self, service: str) -> bool:
        """Probe every instance of ``service`` now (``/health/ready`` of the gateway, with the
        shorter ``check_timeout_s``); ``True`` when one of them is ready. A success puts an
        instance back in rotation at once; failures are left to the poller (its longer timeout)."""
        instances = self.upstreams[service].instances
        results = await asyncio.gather(*(self._ready(i, self._check_timeout) for i in instances))
        for instance, ok in zip(instances, results, strict=True):
            if ok:
                self._record(instance, True)
        return any(results)

    async def probe_all(self) -> None:
        await asyncio.gather(*(self._poll(i) for u in self.upstreams.values() for i in u.instances))

    async def run(self, interval_s: float) -> None:
        """Poll until cancelled."""
        while True:
            await self.probe_all()
            await asyncio.sleep(interval_s)

    def check(self, service: str) -> Callable[[], Awaitable[None]]:
        """A readiness check for ``/health/ready``: raises when no instance of ``service`` is ready."""

        async def check() -> None:
            if not await self.probe(service):
                raise ConnectionError("no instance is ready")

        return check

    def view(self) -> dict[str, str]:
        """``{service: "up" | "down"}`` as the last probes saw it (no IO)."""
        return {
            name: "up" if any(i.ready for i in upstream.instances) else "down"
            for name, upstream in self.upstreams.items()
        }


def serving_view(
    monitor: ReadinessMonitor, started: Callable[[], bool]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """``GET /health/serving``: 200 while this gateway can serve requests (started, not shutting
    down), whatever the state of the services behind it, which it lists for information."""

    async def view(_request: web.Request) -> web.Response:
        ok = started()
        body = {"status": "ok" if ok else "unavailable", "service": "gateway", "services": monitor.view()}
        return web.json_response(body, status=200 if ok else 503)

    return view
