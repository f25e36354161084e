"""Placing and reading orders: the use cases of the public order routes."""

from __future__ import annotations

import uuid

from order_service.domain import history, saga
from order_service.domain.commands import GetOrder, PlaceOrder, UserOrders
from order_service.domain.errors import (
    IdempotencyKeyReusedError,
    OrderNotFoundError,
    ProductNotFoundError,
    ProductNotSellableError,
    UpstreamUnavailableError,
    UserNotFoundError,
)
from order_service.domain.order import Order, price_lines
from order_service.service.deps import Deps
from order_service.service.ports import UnitOfWork
from order_service.service.saga_runner import COMMAND_TOPIC
from order_service.service.users import ensure_user
from shared import tracing
from shared.context import current_request_id
from shared.messaging.envelope import Outgoing


async def place_order(deps: Deps, cmd: PlaceOrder) -> Order:
    """Store the order PENDING with its saga and first command, then wait for its outcome (up to the
    server's limit; not at all with ``respond_async``): the order as it then is.

    With an Idempotency-Key already used for the same body, nothing is written and the earlier
    order is awaited instead. The waiter is subscribed before the order exists, so its notice
    cannot be missed.
    """
    order_id = deps.new_id()
    fut = deps.waiter.subscribe(order_id)
    try:
        found_id, created = await _store(deps, cmd, order_id)
    except BaseException:
        deps.waiter.cancel(order_id, fut)
        raise
    if created is None:  # an Idempotency-Key replay: wait for the first request's order
        deps.waiter.cancel(order_id, fut)
        fut = deps.waiter.subscribe(found_id)
    timeout = 0.0 if cmd.respond_async else deps.wait_timeout_s
    order = await deps.waiter.wait(found_id, fut, timeout, read_first=created is None, created=created)
    assert order is not None
    return order


async def _store(deps: Deps, cmd: PlaceOrder, order_id: str) -> tuple[str, Order | None]:
    """``(order_id, order)``: the order as stored, or ``None`` when an earlier request's order was
    found instead. The key is looked up only when it matters: when the insert finds it taken, or
    when the request would be refused or cannot be priced (a retry gets the first answer even if,
    say, a product was discontinued since, or the catalog is down)."""
    try:
        await ensure_user(deps.users, cmd.user_id)
        order = await _priced_order(deps, cmd, order_id)
    except (UserNotFoundError, ProductNotFoundError, ProductNotSellableError, UpstreamUnavailableError):
        async with deps.statement() as uow:
            existing = await _replayed(uow, cmd)
        if existing is not None:
            return existing, None
        raise
    decision, messages, entries = _first_step(deps, order)
    async with deps.statement() as uow:  # one statement, one round trip, no transaction block
        if cmd.idempotency_key is None:
            await uow.orders.add(order, decision.state, messages, entries)
            return order.order_id, order
        if await uow.orders.add_once(order, decision.state, messages, cmd.idempotency_key, cmd.request_hash, entries):
            return order.order_id, order
        # READ COMMITTED: this statement sees the row the racing (or earlier) request committed.
        winner = await _replayed(uow, cmd)
    assert winner is not None
    return winner, None


async def _replayed(uow: UnitOfWork, cmd: PlaceOrder) -> str | None:
    """The order of the user's earlier request with the same Idempotency-Key, if any."""
    if cmd.idempotency_key is None:
        return None
    found = await uow.keys.find(cmd.user_id, cmd.idempotency_key)
    if found is None:
        return None
    request_hash, order_id = found
    if request_hash != cmd.request_hash:
        raise IdempotencyKeyReusedError("the Idempotency-Key was used with a different request")
    return order_id


async def _priced_order(deps: Deps, cmd: PlaceOrder, order_id: str) -> Order:
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
        created_at=deps.clock(),
    )


def _first_step(deps: Deps, order: Order) -> tuple[saga.Decision, list[Outgoing], list[history.Entry]]:
    """The new saga's decision, its commands as outbox messages, and its history."""
    state = saga.SagaState(
        order_id=order.order_id,
        user_id=order.user_id,
        total_amount=order.total_amount,
        lines=tuple((ln.product_id, ln.quantity) for ln in order.lines),
        user_coupon_id=order.user_coupon_id,
        request_id=current_request_id(),
        traceparent=tracing.current_traceparent(),
    )
    decision = saga.start(state, deps.clock(), deps.policy)
    request_id = current_request_id()
    messages = [
        Outgoing(deps.topics(COMMAND_TOPIC[participant]), order.order_id, command, request_id)
        for participant, command in decision.commands
    ]
    return decision, messages, history.sent(decision)


async def get_order(deps: Deps, cmd: GetOrder) -> Order:
    order = None
    if is_uuid(cmd.order_id):
        async with deps.statement() as uow:
            order = await uow.orders.get(cmd.order_id)
    if order is None:
        raise OrderNotFoundError(f"order {cmd.order_id} does not exist")
    return order


async def user_orders(deps: Deps, cmd: UserOrders) -> list[Order]:
    """Up to ``cmd.limit`` of the user's orders, newest first (the user must exist)."""
    await ensure_user(deps.users, cmd.user_id)
    async with deps.statement() as uow:
        return await uow.orders.of_user(cmd.user_id, cmd.limit, cmd.after)


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
