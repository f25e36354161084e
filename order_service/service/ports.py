"""What the service layer needs from other services (HTTP adapters in ``order_service.clients``)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from order_service.domain.order import Product


class Catalog(Protocol):
    async def lookup(self, product_ids: list[int]) -> dict[int, Product]:
        """The products that exist among ``product_ids`` (one call for all of them)."""


class UserRegistry(Protocol):
    async def find(self, user_id: int) -> tuple[str, datetime] | None:
        """``(name, created_at)`` of the user, or ``None`` when there is no such user."""
