"""balance_service's internal user lookup: ``GET /internal/users/{id}``."""

from __future__ import annotations

from datetime import datetime

import aiohttp

from coupon_service.domain.errors import UserDirectoryUnavailableError


class BalanceUserDirectory:
    """Asks balance_service whether a user exists (one shared session, short timeout)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")

    async def find(self, user_id: int) -> tuple[str, datetime] | None:
        try:
            async with self._session.get(f"{self._base}/internal/users/{user_id}") as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise UserDirectoryUnavailableError(f"user lookup answered {resp.status}")
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UserDirectoryUnavailableError(f"user lookup failed: {exc!r}") from None
        created = datetime.fromisoformat(body["created_at"])
        return body["name"], created
