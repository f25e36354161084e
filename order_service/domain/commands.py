"""Commands of the order context: what the HTTP views and the consumers ask the service layer.

Each is named after its use case, which has the name of its route's view (``place_order`` takes
:class:`PlaceOrder`, ...).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PlaceOrder:
    """Place an order for ``user_id`` (``items``: product id -> quantity, distinct, in the request's
    order) and wait for its outcome, unless ``respond_async``."""

    user_id: int
    items: dict[int, int]
    user_coupon_id: int | None
    idempotency_key: str | None = None
    respond_async: bool = False

    @property
    def request_hash(self) -> str:
        """What a replay under the same Idempotency-Key must match: the SHA-256 of the normalised
        request body (compact JSON, the request's field and item order), ``""`` without a key."""
        if self.idempotency_key is None:
            return ""
        body = {
            "user_id": self.user_id,
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in self.items.items()],
            "user_coupon_id": self.user_coupon_id,
        }
        return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class GetOrder:
    order_id: str


@dataclass(frozen=True)
class UserOrders:
    """A page of a user's orders, newest first; ``after``: the (created_at, order_id) of the last
    order of the previous page."""

    user_id: int
    limit: int
    after: tuple[datetime, str] | None = None


@dataclass(frozen=True)
class OrderSaga:
    order_id: str


@dataclass(frozen=True)
class UnfinishedSagas:
    """Unfinished sagas, oldest first; ``after``: the (started_at, order_id) of the last saga of the
    previous page."""

    step: str | None
    older_than_s: int | None
    limit: int
    after: tuple[datetime, str] | None = None
