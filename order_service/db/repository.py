"""SQL of order_service: orders with their lines, sagas, idempotency keys, known users."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import orjson

from order_service.domain.history import Entry
from order_service.domain.order import Order, OrderLine, OrderStatus
from order_service.domain.saga import SagaState
from shared.db import outbox
from shared.messaging.envelope import Outgoing

OUTCOME_CHANNEL = "order_outcome"


def _history_sql(first: int, at: str, where: str = "") -> str:
    """The saga_history INSERT reading four arrays from ``$first`` (see :func:`_history_args`), all
    rows at ``at``; a CTE of the statement that saves the sagas, so the history costs no round trip."""
    return (
        "INSERT INTO saga_history (order_id, at, kind, name, detail)"
        f" SELECT ho, {at}, hk, hn, hd::jsonb FROM unnest(${first}::uuid[], ${first + 1}::text[],"
        f" ${first + 2}::text[], ${first + 3}::text[]) WITH ORDINALITY AS h(ho, hk, hn, hd, hi) {where} ORDER BY hi"
    )


def _history_args(entries: Sequence[Entry]) -> tuple[list, ...]:
    return (
        [e.order_id for e in entries],
        [e.kind for e in entries],
        [e.name for e in entries],
        [orjson.dumps(e.detail).decode() for e in entries],
    )


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
    + _history_sql(20, "$5::timestamptz")
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
    + _history_sql(22, "$5::timestamptz", "WHERE EXISTS (SELECT 1 FROM k)")
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


async def insert_order(
    conn: asyncpg.Connection | asyncpg.Pool,
    order: Order,
    saga: SagaState,
    messages: Sequence[Outgoing],
    history: Sequence[Entry] = (),
) -> None:
    """The order, its lines, its saga and its outbox messages in one statement (one round trip).

    A single statement is atomic on its own: run on the pool it needs no BEGIN/COMMIT.
    """
    lines = order.lines
    await conn.execute(
        _INSERT_ORDER,
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
        *outbox.insert_args(messages),
        *_history_args(history),
        saga.send_id,
        saga.wait_s,
    )


async def insert_order_once(
    conn: asyncpg.Connection | asyncpg.Pool,
    order: Order,
    saga: SagaState,
    messages: Sequence[Outgoing],
    key: str,
    request_hash: str,
    history: Sequence[Entry] = (),
) -> bool:
    """:func:`insert_order` under an Idempotency-Key, in one statement; ``False`` (nothing written)
    when the key was taken, by an earlier request or a racing one that committed meanwhile."""
    lines = order.lines
    done = await conn.fetchval(
        _INSERT_ORDER_ONCE,
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
        *outbox.insert_args(messages),
        key,
        request_hash,
        *_history_args(history),
        saga.send_id,
        saga.wait_s,
    )
    return done is not None


async def get_order(conn: asyncpg.Connection | asyncpg.Pool, order_id: str) -> Order | None:
    row = await conn.fetchrow(_SELECT_ORDERS + " WHERE o.order_id = $1", order_id)
    return _order(row) if row else None


async def list_orders(conn: asyncpg.Pool, user_id: int, limit: int, after: tuple[datetime, str] | None) -> list[Order]:
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


async def find_idempotency_key(
    conn: asyncpg.Connection | asyncpg.Pool, user_id: int, key: str
) -> tuple[str, str] | None:
    """``(request_hash, order_id)`` of the user's key (keys are scoped to the user)."""
    row = await conn.fetchrow(
        "SELECT request_hash, order_id FROM idempotency_keys WHERE user_id = $1 AND key = $2", user_id, key
    )
    return (row["request_hash"], str(row["order_id"])) if row else None


# --- sagas ------------------------------------------------------------------------------------

_TIMING = "deadline, attempts, send_id, wait_s"


def _saga(row: asyncpg.Record) -> SagaState:
    send_id = row["send_id"]
    return SagaState.from_json(
        row["data"],
        deadline=row["deadline"],
        attempts=row["attempts"],
        send_id=str(send_id) if send_id is not None else None,
        wait_s=row["wait_s"],
    )


# The inbox claim of a consumed batch and the lock of its sagas in one round trip: the sagas are
# locked in order-id order (no deadlock between batches); a saga about to complete (its stock step
# in flight) comes with its order lines, which the order.completed event carries.
_CLAIM_AND_LOCK = """
WITH new AS (
    INSERT INTO inbox (consumer, message_id) SELECT $1, id FROM unnest($2::uuid[]) AS u(id)
    ON CONFLICT DO NOTHING RETURNING message_id
), locked AS (
    SELECT order_id, deadline, attempts, send_id, wait_s, data, step, started_at, updated_at FROM sagas
    WHERE order_id = ANY($3::uuid[]) ORDER BY order_id FOR UPDATE
)
SELECT NULL::uuid AS message_id, l.order_id, l.deadline, l.attempts, l.send_id, l.wait_s, l.data, l.started_at,
       l.updated_at,
       CASE WHEN l.step = $4 THEN (
           SELECT json_agg(json_build_array(i.product_id, i.name, i.unit_price, i.quantity) ORDER BY i.product_id)
           FROM order_items i WHERE i.order_id = l.order_id) END AS items
FROM locked l
UNION ALL
SELECT message_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM new
"""


async def claim_and_lock(
    conn: asyncpg.Connection,
    consumer: str,
    message_ids: Sequence[object],
    order_ids: Sequence[str],
    completing_step: str,
    times: dict[str, tuple[datetime, datetime]] | None = None,
) -> tuple[set[object], dict[str, SagaState], dict[str, list[OrderLine]]]:
    """Record ``message_ids`` in the inbox and lock the sagas of ``order_ids``: the new message ids,
    the sagas, and the lines of the orders whose saga is in ``completing_step``; ``times`` gets each
    saga's (started_at, updated_at), for the flow metrics."""
    rows = await conn.fetch(
        _CLAIM_AND_LOCK, consumer, list(dict.fromkeys(message_ids)), list(order_ids), completing_step
    )
    new: set[object] = set()
    states: dict[str, SagaState] = {}
    lines: dict[str, list[OrderLine]] = {}
    for row in rows:
        if row["message_id"] is not None:
            new.add(row["message_id"])
            continue
        order_id = str(row["order_id"])
        states[order_id] = _saga(row)
        if times is not None:
            times[order_id] = (row["started_at"], row["updated_at"])
        if row["items"] is not None:
            lines[order_id] = [OrderLine(int(p), n, int(u), int(q)) for p, n, u, q in row["items"]]
    return new, states, lines


async def lock_due_sagas(
    conn: asyncpg.Connection,
    limit: int,
    times: dict[str, tuple[datetime, datetime]] | None = None,
) -> tuple[datetime | None, list[SagaState]]:
    """Sagas past their deadline not locked by anyone else (several sweepers share the work), and the
    database's ``now()`` they were compared with: every instance reads deadlines on that one clock.
    A saga whose command still waits in the outbox has no deadline and is left alone. ``times``
    gets each one's (started_at, updated_at)."""
    rows = await conn.fetch(
        f"SELECT now() AS now, order_id, {_TIMING}, data, started_at, updated_at FROM sagas"
        " WHERE deadline <= now() ORDER BY deadline LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )
    if times is not None:
        times.update((str(row["order_id"]), (row["started_at"], row["updated_at"])) for row in rows)
    now = rows[0]["now"] if rows else None
    return now, [_saga(row) for row in rows]


# The outbox relay's hook (``arm_sent``): the saga commands of a batch the broker has just
# acknowledged arm their sagas' deadlines, in the relay's transaction before its COMMIT (a failed
# send rolls back and arms nothing). Only the send a saga waits for counts (``send_id``): an older
# send of the same order, or a command of a saga that moved on meanwhile, changes nothing.
# ``clock_timestamp()``, not ``now()``: the relay's transaction began before the send, which may
# have waited for the broker. Locks in order-id order like the reply batches (no deadlock).
# ``saga.arm`` is the same rule in the pure domain.
ARM_SENT = """
WITH acked AS (
    SELECT s.order_id FROM sagas s JOIN unnest($1::uuid[], $2::uuid[]) AS u(order_id, event_id)
        ON s.order_id = u.order_id AND s.send_id = u.event_id
    ORDER BY s.order_id FOR UPDATE OF s
)
UPDATE sagas s SET attempts = s.attempts + 1, send_id = NULL,
    deadline = clock_timestamp() + make_interval(secs => s.wait_s)
FROM acked WHERE s.order_id = acked.order_id
"""


async def arm_sent(conn: asyncpg.Connection, order_ids: Sequence[str], event_ids: Sequence[object]) -> None:
    """Arm the deadlines of the sagas whose awaited command (``event_ids``, by order) was acknowledged."""
    await conn.execute(ARM_SENT, list(order_ids), list(event_ids))


_WRITE = (
    """
WITH s AS (
    UPDATE sagas s SET step = u.step, attempts = u.attempts, deadline = u.deadline,
        data = u.data::jsonb, send_id = u.send_id, wait_s = u.wait_s, updated_at = now()
    FROM unnest($1::uuid[], $2::text[], $3::int[], $4::timestamptz[], $5::text[], $22::uuid[], $23::float8[])
        AS u(order_id, step, attempts, deadline, data, send_id, wait_s)
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
    """
    + outbox.insert_sql(12)
    + """
), h AS (
    """
    + _history_sql(18, "$11::timestamptz")
    + f"""
)
SELECT count(pg_notify('{OUTCOME_CHANNEL}', json_build_object(
    'order_id', order_id, 'status', status, 'failure_code', failure_code, 'discount_amount', discount_amount,
    'paid_amount', paid_amount, 'completed_at', completed_at)::text)) FROM f
"""
)


async def write_decisions(
    conn: asyncpg.Connection,
    states: Sequence[SagaState],
    finished: Sequence[tuple[SagaState, str, str | None]],
    at: datetime,
    messages: Sequence[Outgoing],
    history: Sequence[Entry] = (),
) -> None:
    """Save the changed sagas, set each finished order's final status and amounts (and notify the
    waiting requests of every instance, the notice carrying the outcome: see ``db.outcomes``), and
    add ``messages`` to the outbox and ``history`` to the sagas' history: one statement of the
    caller's transaction."""
    await conn.execute(
        _WRITE,
        [s.order_id for s in states],
        [str(s.step) for s in states],
        [s.attempts for s in states],
        [s.deadline for s in states],
        [orjson.dumps(s.to_json()).decode() for s in states],
        [s.order_id for s, _, _ in finished],
        [status for _, status, _ in finished],
        [code for _, _, code in finished],
        [s.discount_amount for s, _, _ in finished],
        [s.paid_amount for s, _, _ in finished],
        at,
        *outbox.insert_args(messages),
        *_history_args(history),
        [s.send_id for s in states],
        [s.wait_s for s in states],
    )


async def order_lines(conn: asyncpg.Connection, order_ids: Sequence[str]) -> dict[str, list[OrderLine]]:
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


# --- the saga view (admin) -------------------------------------------------------------------

_SAGA_ROW = """
SELECT s.order_id, o.status, s.step, s.attempts, s.deadline, s.started_at, s.updated_at
FROM sagas s JOIN orders o ON o.order_id = s.order_id
"""


async def saga_view(
    conn: asyncpg.Pool | asyncpg.Connection, order_id: str
) -> tuple[asyncpg.Record, list[asyncpg.Record]] | None:
    """An order's saga row and its history, oldest first (two reads of an admin route)."""
    row = await conn.fetchrow(_SAGA_ROW + " WHERE s.order_id = $1", order_id)
    if row is None:
        return None
    history = await conn.fetch(
        "SELECT at, kind, name, detail FROM saga_history WHERE order_id = $1 ORDER BY id", order_id
    )
    return row, history


async def unfinished_sagas(
    conn: asyncpg.Pool | asyncpg.Connection,
    *,
    step: str | None,
    started_before: datetime | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[asyncpg.Record]:
    """Sagas not DONE nor FAILED, oldest first (``sagas_unfinished_idx``); ``after`` is the
    (started_at, order_id) of the last saga of the previous page."""
    return await conn.fetch(
        _SAGA_ROW + " WHERE s.step NOT IN ('DONE', 'FAILED')"
        " AND ($1::text IS NULL OR s.step = $1) AND ($2::timestamptz IS NULL OR s.started_at < $2)"
        " AND ($3::timestamptz IS NULL OR (s.started_at, s.order_id) > ($3, $4::uuid))"
        " ORDER BY s.started_at, s.order_id LIMIT $5",
        step,
        started_before,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )


async def unfinished_by_step(conn: asyncpg.Connection) -> tuple[dict[str, int], float]:
    """Unfinished sagas per step and the age in seconds of the oldest (0 when none): one query on
    ``sagas_unfinished_idx``, for the periodic gauges."""
    rows = await conn.fetch(
        "SELECT step, count(*) AS n, extract(epoch FROM now() - min(started_at)) AS age FROM sagas"
        " WHERE step NOT IN ('DONE', 'FAILED') GROUP BY step"
    )
    return {r["step"]: r["n"] for r in rows}, max((float(r["age"]) for r in rows), default=0.0)


# --- known users ------------------------------------------------------------------------------


async def user_known(conn: asyncpg.Pool | asyncpg.Connection, user_id: int) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM known_users WHERE user_id = $1", user_id))


async def remember_user(conn: asyncpg.Pool | asyncpg.Connection, user_id: int, name: str, created_at: datetime) -> None:
    await conn.execute(
        "INSERT INTO known_users (user_id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        user_id,
        name,
        created_at,
    )
