"""HTTP adapters for the catalog's product lookup and balance's user lookup."""

from __future__ import annotations

from datetime import datetime

import aiohttp

from order_service.domain.errors import UpstreamUnavailableError
from order_service.domain.order import Product
from shared.context import current_request_id


def _headers() -> dict[str, str]:
    rid = current_request_id()
    return {"X-Request-ID": rid} if rid else {}


class HttpCatalog:
    """``POST {catalog}/internal/products/lookup``."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + "/internal/products/lookup"

    async def lookup(self, product_ids: list[int]) -> dict[int, Product]:
        try:
            async with self._session.post(self._url, json={"product_ids": product_ids}, headers=_headers()) as resp:
                if resp.status != 200:
                    raise UpstreamUnavailableError(f"catalog answered {resp.status}")
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailableError("the catalog is unreachable") from exc
        return {
            int(item["product_id"]): Product(int(item["product_id"]), item["name"], int(item["price"]), item["status"])
            for item in body["items"]
        }


class HttpUserRegistry:
    """``GET {balance}/internal/users/{id}``."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")

    async def find(self, user_id: int) -> tuple[str, datetime] | None:
        try:
            async with self._session.get(f"{self._base}/internal/users/{user_id}", headers=_headers()) as resp:
                if resp.status == 404:
                    return None
                if resp.status != 200:
                    raise UpstreamUnavailableError(f"the user registry answered {resp.status}")
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailableError("the user registry is unreachable") from exc
        return body["name"], datetime.fromisoformat(body["created_at"])
