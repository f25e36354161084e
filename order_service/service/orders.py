"""Placing and reading orders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from order_service.db import repository as repo
from order_service.domain import history, saga
from order_service.domain.errors import (
    IdempotencyKeyReusedError,
    OrderNotFoundError,
    ProductNotFoundError,
    ProductNotSellableError,
    UpstreamUnavailableError,
    UserNotFoundError,
)
from order_service.domain.order import Order, price_lines
from order_service.service.ports import Catalog, UserRegistry
from order_service.service.users import KnownUsers, ensure_user
from shared import tracing
from shared.context import current_request_id
from shared.messaging.envelope import Outgoing, utcnow
from shared.messaging.topics import Topics


@dataclass(frozen=True)
class PlaceOrder:
    """Command: place an order for ``user_id`` (``items``: product id -> quantity, distinct)."""

    user_id: int
    items: dict[int, int]
    user_coupon_id: int | None
    idempotency_key: str | None = None
    request_hash: str = ""


@dataclass(frozen=True)
class OrderDeps:
    pool: asyncpg.Pool
    topics: Topics
    policy: saga.Policy
    catalog: Catalog
    users: UserRegistry
    known: KnownUsers = field(default_factory=KnownUsers)


async def _replayed(pool: asyncpg.Pool | asyncpg.Connection, cmd: PlaceOrder) -> str | None:
    """The order of the user's earlier request with the same Idempotency-Key, if any."""
    if cmd.idempotency_key is None:
        return None
    found = await repo.find_idempotency_key(pool, cmd.user_id, cmd.idempotency_key)
    if found is None:
        return None
    request_hash, order_id = found
    if request_hash != cmd.request_hash:
        raise IdempotencyKeyReusedError("the Idempotency-Key was used with a different request")
    return order_id


async def _priced_order(deps: OrderDeps, cmd: PlaceOrder, order_id: str) -> Order:
    products = await deps.catalog.lookup(list(cmd.items))
    missing = [pid for pid in cmd.items if pid not in products]
    if missing:
        raise ProductNotFoundError(f"product {missing[0]} does not exist")
    stopped = [pid for pid in cmd.items if products[pid].status == "DISCONTINUED"]
    if stopped:
        raise ProductNotSellableError(f"product {stopped[0]} is no longer sold")
    return Order(
        order_id=order_id,
        user_id=cmd.user_id,
        lines=price_lines(cmd.items, products),
        user_coupon_id=cmd.user_coupon_id,
        created_at=utcnow(),
    )


async def place_order(deps: OrderDeps, cmd: PlaceOrder, order_id: str | None = None) -> tuple[str, Order | None]:
    """Store the order PENDING with its saga and first command; return ``(order_id, order)``, the
    order as stored, or ``None`` when an earlier request's order was found instead.

    With an Idempotency-Key already used for the same body, the earlier order is returned
    and nothing is written; racing requests resolve on the key's row. The key
    is looked up only when it matters: when the insert finds it taken, or when the request would
    be refused or cannot be priced (a retry gets the first answer even if, say, a product was
    discontinued since, or the catalog is down).
    """
    try:
        await ensure_user(deps.pool, deps.users, cmd.user_id, deps.known)
        order = await _priced_order(deps, cmd, order_id or str(uuid.uuid4()))
    except (UserNotFoundError, ProductNotFoundError, ProductNotSellableError, UpstreamUnavailableError):
        existing = await _replayed(deps.pool, cmd)
        if existing is not None:
            return existing, None
        raise
    state = saga.SagaState(
        order_id=order.order_id,
        user_id=order.user_id,
        total_amount=order.total_amount,
        lines=tuple((ln.product_id, ln.quantity) for ln in order.lines),
        user_coupon_id=order.user_coupon_id,
        request_id=current_request_id(),
        traceparent=tracing.current_traceparent(),
    )
    decision = saga.start(state, utcnow(), deps.policy)
    request_id = current_request_id()
    messages = [
        Outgoing(deps.topics(topic), order.order_id, command, request_id) for topic, command in decision.commands
    ]
    entries = history.sent(decision)
    if cmd.idempotency_key is None:  # one statement, one round trip, no transaction block
        await repo.insert_order(deps.pool, order, decision.state, messages, entries)
        return order.order_id, order
    if not await repo.insert_order_once(
        deps.pool, order, decision.state, messages, cmd.idempotency_key, cmd.request_hash, entries
    ):
        # READ COMMITTED: this statement sees the row the racing (or earlier) request committed.
        winner = await _replayed(deps.pool, cmd)
        assert winner is not None
        return winner, None
    return order.order_id, order


async def get_order(pool: asyncpg.Pool, order_id: str) -> Order:
    order = await repo.get_order(pool, order_id) if is_uuid(order_id) else None
    if order is None:
        raise OrderNotFoundError(f"order {order_id} does not exist")
    return order


async def user_orders(deps: OrderDeps, user_id: int, limit: int, after: tuple[datetime, str] | None) -> list[Order]:
    await ensure_user(deps.pool, deps.users, user_id, deps.known)
    return await repo.list_orders(deps.pool, user_id, limit, after)


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
