"""SQL of orders: an order with its lines, saga, first command and history in one statement;
reads; idempotency keys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeAlias

import asyncpg

from order_service.db.history import history_args, history_sql
from order_service.domain.history import Entry
from order_service.domain.model import Order, OrderLine, OrderStatus
from order_service.domain.saga import SagaState
from shared.db import outbox
from shared.messaging.envelope import Outgoing

Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool


_INSERT_ORDER = (
    """
WITH o AS (
    INSERT INTO orders (order_id, user_id, status, total_amount, user_coupon_id, created_at)
    VALUES ($1, $2, 'PENDING', $3, $4, $5) RETURNING order_id
), i AS (
    INSERT INTO order_items (order_id, product_id, name, unit_price, quantity)
    SELECT $1, p, n, u, q FROM unnest($6::bigint[], $7::text[], $8::bigint[], $9::int[]) AS t(p, n, u, q)
), m AS (
    """
    + outbox.insert_sql(14)
    + """
), h AS (
    """
    + history_sql(20, "$5::timestamptz")
    + """
)
INSERT INTO sagas (order_id, step, attempts, deadline, data, started_at, send_id, wait_s)
SELECT order_id, $10, $11, $12, $13::jsonb, $5, $24, $25 FROM o
"""
)
# The same, only when the user's Idempotency-Key is new: the key, the order, its lines, saga and messages
# in one statement. A key taken before (or by a racing request, whose commit ON CONFLICT waits
# for) inserts nothing and returns no row.
_INSERT_ORDER_ONCE = (
    """
WITH k AS (
    INSERT INTO idempotency_keys (user_id, key, request_hash, order_id) VALUES ($2, $20, $21, $1)
    ON CONFLICT (user_id, key) DO NOTHING RETURNING order_id
), o AS (
    INSERT INTO orders (order_id, user_id, status, total_amount, user_coupon_id, created_at)
    SELECT $1, $2, 'PENDING', $3, $4, $5 FROM k RETURNING order_id
), i AS (
    INSERT INTO order_items (order_id, product_id, name, unit_price, quantity)
    SELECT $1, p, n, u, q FROM unnest($6::bigint[], $7::text[], $8::bigint[], $9::int[]) AS t(p, n, u, q)
    WHERE EXISTS (SELECT 1 FROM k)
), m AS (
    """
    + outbox.insert_sql(14)
    + """ WHERE EXISTS (SELECT 1 FROM k)
), h AS (
    """
    + history_sql(22, "$5::timestamptz", "WHERE EXISTS (SELECT 1 FROM k)")
    + """
)
INSERT INTO sagas (order_id, step, attempts, deadline, data, started_at, send_id, wait_s)
SELECT order_id, $10, $11, $12, $13::jsonb, $5, $26, $27 FROM o
RETURNING 1
"""
)
_SELECT_ORDERS = """
SELECT o.*, coalesce(
    (SELECT json_agg(json_build_array(i.product_id, i.name, i.unit_price, i.quantity) ORDER BY i.product_id)
       FROM order_items i WHERE i.order_id = o.order_id), '[]'::json) AS items
FROM orders o
"""


def _order(row: asyncpg.Record) -> Order:
    lines = tuple(OrderLine(int(p), n, int(u), int(q)) for p, n, u, q in row["items"])
    return Order(
        order_id=str(row["order_id"]),
        user_id=row["user_id"],
        lines=lines,
        user_coupon_id=row["user_coupon_id"],
        created_at=row["created_at"],
        status=OrderStatus(row["status"]),
        discount_amount=row["discount_amount"],
        paid_amount=row["paid_amount"],
        failure_code=row["failure_code"],
        completed_at=row["completed_at"],
    )


def _order_args(order: Order, saga: SagaState) -> tuple[object, ...]:
    """The order, its lines and its saga: the first parameters of both insert statements."""
    lines = order.lines
    return (
        order.order_id,
        order.user_id,
        order.total_amount,
        order.user_coupon_id,
        order.created_at,
        [line.product_id for line in lines],
        [line.name for line in lines],
        [line.unit_price for line in lines],
        [line.quantity for line in lines],
        str(saga.step),
        saga.attempts,
        saga.deadline,
        saga.to_json(),
    )


async def insert_order(
    conn: Executor,
    order: Order,
    saga: SagaState,
    messages: Sequence[Outgoing],
    history: Sequence[Entry] = (),
) -> None:
    """The order, its lines, its saga and its outbox messages in one statement (one round trip).

    A single statement is atomic on its own: run on the pool it needs no BEGIN/COMMIT.
    """
    await conn.execute(
        _INSERT_ORDER,
        *_order_args(order, saga),
        *outbox.insert_args(messages),
        *history_args(history),
        saga.send_id,
        saga.wait_s,
    )


async def insert_order_once(
    conn: Executor,
    order: Order,
    saga: SagaState,
    messages: Sequence[Outgoing],
    key: str,
    request_hash: str,
    history: Sequence[Entry] = (),
) -> bool:
    """:func:`insert_order` under an Idempotency-Key, in one statement; ``False`` (nothing written)
    when the key was taken, by an earlier request or a racing one that committed meanwhile."""
    done = await conn.fetchval(
        _INSERT_ORDER_ONCE,
        *_order_args(order, saga),
        *outbox.insert_args(messages),
        key,
        request_hash,
        *history_args(history),
        saga.send_id,
        saga.wait_s,
    )
    return done is not None


async def get_order(conn: Executor, order_id: str) -> Order | None:
    row = await conn.fetchrow(_SELECT_ORDERS + " WHERE o.order_id = $1", order_id)
    return _order(row) if row else None


async def list_orders(conn: Executor, user_id: int, limit: int, after: tuple[datetime, str] | None) -> list[Order]:
    """Newest first; ``after`` is the (created_at, order_id) of the last order of the previous page."""
    if after is None:
        rows = await conn.fetch(
            _SELECT_ORDERS + " WHERE o.user_id = $1 ORDER BY o.created_at DESC, o.order_id DESC LIMIT $2",
            user_id,
            limit,
        )
    else:
        rows = await conn.fetch(
            _SELECT_ORDERS + " WHERE o.user_id = $1 AND (o.created_at, o.order_id) < ($3, $4::uuid)"
            " ORDER BY o.created_at DESC, o.order_id DESC LIMIT $2",
            user_id,
            limit,
            after[0],
            after[1],
        )
    return [_order(row) for row in rows]


async def find_idempotency_key(conn: Executor, user_id: int, key: str) -> tuple[str, str] | None:
    """``(request_hash, order_id)`` of the user's key (keys are scoped to the user)."""
    row = await conn.fetchrow(
        "SELECT request_hash, order_id FROM idempotency_keys WHERE user_id = $1 AND key = $2", user_id, key
    )
    return (row["request_hash"], str(row["order_id"])) if row else None


async def order_lines(conn: Executor, order_ids: Sequence[str]) -> dict[str, list[OrderLine]]:
    rows = await conn.fetch(
        "SELECT order_id, product_id, name, unit_price, quantity FROM order_items"
        " WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, product_id",
        list(order_ids),
    )
    lines: dict[str, list[OrderLine]] = {}
    for row in rows:
        lines.setdefault(str(row["order_id"]), []).append(
            OrderLine(row["product_id"], row["name"], row["unit_price"], row["quantity"])
        )
    return lines


async def expire_idempotency_keys(conn: Executor, hours: int) -> None:
    """Forget the idempotency keys older than ``hours``."""
    await conn.execute("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)", hours)


class PgOrders:
    """The orders repository on one connection (see ``service.ports.Orders``)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(
        self, order: Order, saga: SagaState, messages: Sequence[Outgoing], history: Sequence[Entry] = ()
    ) -> None:
        await insert_order(self._conn, order, saga, messages, history)

    async def add_once(
        self,
        order: Order,
        saga: SagaState,
        messages: Sequence[Outgoing],
        key: str,
        request_hash: str,
        history: Sequence[Entry] = (),
    ) -> bool:
        return await insert_order_once(self._conn, order, saga, messages, key, request_hash, history)

    async def get(self, order_id: str) -> Order | None:
        return await get_order(self._conn, order_id)

    async def of_user(self, user_id: int, limit: int, after: tuple[datetime, str] | None) -> list[Order]:
        return await list_orders(self._conn, user_id, limit, after)

    async def lines(self, order_ids: Sequence[str]) -> dict[str, list[OrderLine]]:
        return await order_lines(self._conn, order_ids)


class PgIdempotencyKeys:
    """The idempotency keys repository on one connection (see ``service.ports.IdempotencyKeys``)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def find(self, user_id: int, key: str) -> tuple[str, str] | None:
        return await find_idempotency_key(self._conn, user_id, key)

    async def expire(self, hours: int) -> None:
        await expire_idempotency_keys(self._conn, hours)
