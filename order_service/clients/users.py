"""HTTP adapter of balance's user lookup (``service.ports.UserRegistry``)."""

from __future__ import annotations

from datetime import datetime

import aiohttp

from order_service.clients.headers import request_headers
from order_service.domain.errors import UpstreamUnavailableError


class HttpUserRegistry:
    """``GET {balance}/internal/users/{id}``."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")

    async def find(self, user_id: int) -> tuple[str, datetime] | None:
        try:
            async with self._session.get(f"{self._base}/internal/users/{user_id}", headers=request_headers()) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise UpstreamUnavailableError(f"the user registry answered {resp.status}")
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailableError("the user registry is unreachable") from exc
        return body["name"], datetime.fromisoformat(body["created_at"])
