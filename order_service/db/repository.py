"""SQL of order_service: orders with their lines, sagas, idempotency keys, known users."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import orjson

from order_service.domain.order import Order, OrderLine, OrderStatus
from order_service.domain.saga import SagaState
from shared.db import outbox
from shared.messaging.envelope import Outgoing

OUTCOME_CHANNEL = "order_outcome"

_INSERT_ORDER = """
WITH o AS (
    INSERT INTO orders (order_id, user_id, status, total_amount, user_coupon_id, created_at)
    VALUES ($1, $2, 'PENDING', $3, $4, $5) RETURNING order_id
), i AS (
    INSERT INTO order_items (order_id, product_id, name, unit_price, quantity)
    SELECT $1, p, n, u, q FROM unnest($6::bigint[], $7::text[], $8::bigint[], $9::int[]) AS t(p, n, u, q)
), m AS (
    """ + outbox.insert_sql(14) + """
)
INSERT INTO sagas (order_id, step, attempts, deadline, data) SELECT order_id, $10, $11, $12, $13::jsonb FROM o
"""
# The same, only when the user's Idempotency-Key is new: the key, the order, its lines, saga and messages
# in one statement. A key taken before (or by a racing request, whose commit ON CONFLICT waits
# for) inserts nothing and returns no row.
_INSERT_ORDER_ONCE = """
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
    """ + outbox.insert_sql(14) + """ WHERE EXISTS (SELECT 1 FROM k)
)
INSERT INTO sagas (order_id, step, attempts, deadline, data) SELECT order_id, $10, $11, $12, $13::jsonb FROM o
RETURNING 1
"""
_SELECT_ORDERS = """
SELECT o.*, coalesce(
    (SELECT json_agg(json_build_array(i.product_id, i.name, i.unit_price, i.quantity) ORDER BY i.product_id)
       FROM order_items i WHERE i.order_id = o.order_id), '[]'::json) AS items
FROM orders o
"""


def _order(row: asyncpg.Record) -> Order:
    lines = tuple(OrderLine(int(p), n, int(u), int(q)) for p, n, u, q in row["items"])
    return Order(
        order_id=str(row["order_id"]), user_id=row["user_id"], lines=lines,
        user_coupon_id=row["user_coupon_id"], created_at=row["created_at"],
        status=OrderStatus(row["status"]), discount_amount=row["discount_amount"],
        paid_amount=row["paid_amount"], failure_code=row["failure_code"], completed_at=row["completed_at"],
    )


async def insert_order(
    conn: asyncpg.Connection | asyncpg.Pool, order: Order, saga: SagaState, messages: Sequence[Outgoing]
) -> None:
    """The order, its lines, its saga and its outbox messages in one statement (one round trip).

    A single statement is atomic on its own: run on the pool it needs no BEGIN/COMMIT.
    """
    lines = order.lines
    await conn.execute(
        _INSERT_ORDER, order.order_id, order.user_id, order.total_amount, order.user_coupon_id, order.created_at,
        [line.product_id for line in lines], [line.name for line in lines], [line.unit_price for line in lines],
        [line.quantity for line in lines], str(saga.step), saga.attempts, saga.deadline, saga.to_json(),
        *outbox.insert_args(messages))


async def insert_order_once(
    conn: asyncpg.Connection | asyncpg.Pool, order: Order, saga: SagaState, messages: Sequence[Outgoing],
    key: str, request_hash: str,
) -> bool:
    """:func:`insert_order` under an Idempotency-Key, in one statement; ``False`` (nothing written)
    when the key was taken, by an earlier request or a racing one that committed meanwhile."""
    lines = order.lines
    done = await conn.fetchval(
        _INSERT_ORDER_ONCE, order.order_id, order.user_id, order.total_amount, order.user_coupon_id,
        order.created_at, [line.product_id for line in lines], [line.name for line in lines],
        [line.unit_price for line in lines], [line.quantity for line in lines], str(saga.step), saga.attempts,
        saga.deadline, saga.to_json(), *outbox.insert_args(messages), key, request_hash)
    return done is not None


async def get_order(conn: asyncpg.Connection | asyncpg.Pool, order_id: str) -> Order | None:
    row = await conn.fetchrow(_SELECT_ORDERS + " WHERE o.order_id = $1", order_id)
    return _order(row) if row else None


async def list_orders(
    conn: asyncpg.Pool, user_id: int, limit: int, after: tuple[datetime, str] | None
) -> list[Order]:
    """Newest first; ``after`` is the (created_at, order_id) of the last order of the previous page."""
    if after is None:
        rows = await conn.fetch(
            _SELECT_ORDERS + " WHERE o.user_id = $1 ORDER BY o.created_at DESC, o.order_id DESC LIMIT $2",
            user_id, limit)
    else:
        rows = await conn.fetch(
            _SELECT_ORDERS + " WHERE o.user_id = $1 AND (o.created_at, o.order_id) < ($3, $4::uuid)"
            " ORDER BY o.created_at DESC, o.order_id DESC LIMIT $2", user_id, limit, after[0], after[1])
    return [_order(row) for row in rows]


async def find_idempotency_key(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: int, key: str
) -> tuple[str, str] | None:
    """``(request_hash, order_id)`` of the user's key (keys are scoped to the user)."""
    row = await conn.fetchrow(
        "SELECT request_hash, order_id FROM idempotency_keys WHERE user_id = $1 AND key = $2", user_id, key)
    return (row["request_hash"], str(row["order_id"])) if row else None


# --- sagas ------------------------------------------------------------------------------------

def _saga(row: asyncpg.Record) -> SagaState:
    return SagaState.from_json(row["data"], row["deadline"])


# The inbox claim of a consumed batch and the lock of its sagas in one round trip: the sagas are
# locked in order-id order (no deadlock between batches); a saga about to complete (its stock step
# in flight) comes with its order lines, which the order.completed event carries.
_CLAIM_AND_LOCK = """
WITH new AS (
    INSERT INTO inbox (consumer, message_id) SELECT $1, id FROM unnest($2::uuid[]) AS u(id)
    ON CONFLICT DO NOTHING RETURNING message_id
), locked AS (
    SELECT order_id, deadline, data, step FROM sagas WHERE order_id = ANY($3::uuid[])
    ORDER BY order_id FOR UPDATE
)
SELECT NULL::uuid AS message_id, l.order_id, l.deadline, l.data,
       CASE WHEN l.step = $4 THEN (
           SELECT json_agg(json_build_array(i.product_id, i.name, i.unit_price, i.quantity) ORDER BY i.product_id)
           FROM order_items i WHERE i.order_id = l.order_id) END AS items
FROM locked l
UNION ALL
SELECT message_id, NULL, NULL, NULL, NULL FROM new
"""


async def claim_and_lock(
    conn: asyncpg.Connection, consumer: str, message_ids: Sequence[object], order_ids: Sequence[str],
    completing_step: str,
) -> tuple[set[object], dict[str, SagaState], dict[str, list[OrderLine]]]:
    """Record ``message_ids`` in the inbox and lock the sagas of ``order_ids``: the new message ids,
    the sagas, and the lines of the orders whose saga is in ``completing_step``."""
    rows = await conn.fetch(_CLAIM_AND_LOCK, consumer, list(dict.fromkeys(message_ids)), list(order_ids),
                            completing_step)
    new: set[object] = set()
    states: dict[str, SagaState] = {}
    lines: dict[str, list[OrderLine]] = {}
    for row in rows:
        if row["message_id"] is not None:
            new.add(row["message_id"])
            continue
        order_id = str(row["order_id"])
        states[order_id] = _saga(row)
        if row["items"] is not None:
            lines[order_id] = [OrderLine(int(p), n, int(u), int(q)) for p, n, u, q in row["items"]]
    return new, states, lines


async def lock_due_sagas(conn: asyncpg.Connection, now: datetime, limit: int) -> list[SagaState]:
    """Sagas past their deadline not locked by anyone else (several sweepers share the work)."""
    rows = await conn.fetch(
        "SELECT order_id, deadline, data FROM sagas WHERE deadline <= $1"
        " ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED", now, limit)
    return [_saga(row) for row in rows]


_WRITE = """
WITH s AS (
    UPDATE sagas s SET step = u.step, attempts = u.attempts, deadline = u.deadline,
        data = u.data::jsonb, updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::text[])
        AS u(order_id, step, attempts, deadline, data)
    WHERE s.order_id = u.order_id
), f AS (
    UPDATE orders o SET status = u.status, failure_code = u.code, discount_amount = u.discount,
        paid_amount = u.paid, finished_at = $11::timestamptz,
        completed_at = CASE WHEN u.status = 'COMPLETED' THEN $11::timestamptz END
    FROM unnest($6::uuid[], $7::text[], $8::text[], $9::bigint[], $10::bigint[])
        AS u(order_id, status, code, discount, paid)
    WHERE o.order_id = u.order_id AND o.status = 'PENDING'
    RETURNING o.order_id, o.status, o.failure_code, o.discount_amount, o.paid_amount, o.completed_at
), m AS (
    """ + outbox.insert_sql(12) + f"""
)
SELECT count(pg_notify('{OUTCOME_CHANNEL}', json_build_object(
    'order_id', order_id, 'status', status, 'failure_code', failure_code, 'discount_amount', discount_amount,
    'paid_amount', paid_amount, 'completed_at', completed_at)::text)) FROM f
"""


async def write_decisions(
    conn: asyncpg.Connection, states: Sequence[SagaState], finished: Sequence[tuple[SagaState, str, str | None]],
    at: datetime, messages: Sequence[Outgoing],
) -> None:
    """Save the changed sagas, set each finished order's final status and amounts (and notify the
    waiting requests of every instance, the notice carrying the outcome: see ``db.outcomes``), and
    add ``messages`` to the outbox: one statement of the caller's transaction."""
    await conn.execute(
        _WRITE,
        [s.order_id for s in states], [str(s.step) for s in states], [s.attempts for s in states],
        [s.deadline for s in states], [orjson.dumps(s.to_json()).decode() for s in states],
        [s.order_id for s, _, _ in finished], [status for _, status, _ in finished],
        [code for _, _, code in finished], [s.discount_amount for s, _, _ in finished],
        [s.paid_amount for s, _, _ in finished], at, *outbox.insert_args(messages))


async def order_lines(conn: asyncpg.Connection, order_ids: Sequence[str]) -> dict[str, list[OrderLine]]:
    rows = await conn.fetch(
        "SELECT order_id, product_id, name, unit_price, quantity FROM order_items"
        " WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, product_id", list(order_ids))
    lines: dict[str, list[OrderLine]] = {}
    for row in rows:
        lines.setdefault(str(row["order_id"]), []).append(
            OrderLine(row["product_id"], row["name"], row["unit_price"], row["quantity"]))
    return lines


# --- known users ------------------------------------------------------------------------------

async def user_known(conn: asyncpg.Pool | asyncpg.Connection, user_id: int) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM known_users WHERE user_id = $1", user_id))


async def remember_user(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, name: str, created_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO known_users (user_id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        user_id, name, created_at)
