"""The client of balance_service's internal API (``GET /internal/users/{id}``), for the services
that need to know whether a user exists (coupon, order: the fallback of the known-users projection,
:mod:`shared.known_users`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import aiohttp

from shared.clients.headers import request_headers


class BalanceUnavailableError(Exception):
    """balance_service did not answer, or answered neither 200 nor 404."""


class BalanceClient:
    """Asks balance_service about users (one shared session; its timeouts are the session's).

    ``unavailable`` makes the error raised when balance cannot answer: a service passes its own
    domain error (mapped to ``503`` by its ``ERROR_MAP``); :class:`BalanceUnavailableError` by default.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        unavailable: Callable[[str], Exception] = BalanceUnavailableError,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._unavailable = unavailable

    async def find(self, user_id: int) -> tuple[str, datetime] | None:
        """The user's ``(name, created_at)``, or ``None`` when balance does not know the user."""
        try:
            async with self._session.get(f"{self._base}/internal/users/{user_id}", headers=request_headers()) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise self._unavailable(f"the user lookup answered {resp.status}")
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._unavailable("the user lookup is unreachable") from exc
        return str(body["name"]), datetime.fromisoformat(body["created_at"])


__all__ = ["BalanceClient", "BalanceUnavailableError"]
