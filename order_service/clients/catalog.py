"""HTTP adapter of the catalog's product lookup (``service.ports.Catalog``)."""

from __future__ import annotations

import aiohttp

from order_service.domain.errors import UpstreamUnavailableError
from order_service.domain.order import Product
from shared.clients.headers import request_headers


class HttpCatalog:
    """``POST {catalog}/internal/products/lookup``."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + "/internal/products/lookup"

    async def lookup(self, product_ids: list[int]) -> dict[int, Product]:
        try:
            async with self._session.post(
                self._url, json={"product_ids": product_ids}, headers=request_headers()
            ) as resp:
                if resp.status != 200:
                    raise UpstreamUnavailableError(f"catalog answered {resp.status}")
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailableError("the catalog is unreachable") from exc
        return {
            int(item["product_id"]): Product(int(item["product_id"]), item["name"], int(item["price"]), item["status"])
            for item in body["items"]
        }
