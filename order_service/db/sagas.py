"""SQL of sagas: the reply batch's inbox claim and lock, the sweeper's lock, the one write of a batch's
decisions (with the orders it finishes and their ``pg_notify``), the relay's arming hook, and the
admin saga view."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import orjson

from order_service.db.history import history_args, history_sql
from order_service.domain.history import Entry
from order_service.domain.model import OrderLine
from order_service.domain.saga import SagaState
from shared.db import outbox
from shared.db.inbox import CLAIM_SQL
from shared.db.outbox import Sent, SentHook
from shared.messaging import topics
from shared.messaging.envelope import Outgoing
from shared.messaging.topics import Topics

Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool
OUTCOME_CHANNEL = "order_outcome"

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
_CLAIM_AND_LOCK = f"""
WITH new AS ({CLAIM_SQL}), locked AS (
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
    + history_sql(18, "$11::timestamptz")
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
        *history_args(history),
        [s.send_id for s in states],
        [s.wait_s for s in states],
    )


# --- the saga view (admin) -------------------------------------------------------------------

_SAGA_ROW = """
SELECT s.order_id, o.status, s.step, s.attempts, s.deadline, s.started_at, s.updated_at
FROM sagas s JOIN orders o ON o.order_id = s.order_id
"""


async def saga_view(conn: Executor, order_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """An order's saga row and its history, oldest first (two reads of an admin route)."""
    row = await conn.fetchrow(_SAGA_ROW + " WHERE s.order_id = $1", order_id)
    if row is None:
        return None
    history = await conn.fetch(
        "SELECT at, kind, name, detail FROM saga_history WHERE order_id = $1 ORDER BY id", order_id
    )
    return dict(row), [dict(h) for h in history]


async def unfinished_sagas(
    conn: Executor,
    *,
    step: str | None,
    started_before: datetime | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[dict[str, Any]]:
    """Sagas not DONE nor FAILED, oldest first (``sagas_unfinished_idx``); ``after`` is the
    (started_at, order_id) of the last saga of the previous page."""
    rows = await conn.fetch(
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
    return [dict(row) for row in rows]


async def unfinished_by_step(conn: asyncpg.Connection) -> tuple[dict[str, int], float]:
    """Unfinished sagas per step and the age in seconds of the oldest (0 when none): one query on
    ``sagas_unfinished_idx``, for the periodic gauges."""
    rows = await conn.fetch(
        "SELECT step, count(*) AS n, extract(epoch FROM now() - min(started_at)) AS age FROM sagas"
        " WHERE step NOT IN ('DONE', 'FAILED') GROUP BY step"
    )
    return {r["step"]: r["n"] for r in rows}, max((float(r["age"]) for r in rows), default=0.0)


COMMAND_TOPICS = (topics.COUPON_COMMANDS, topics.BALANCE_COMMANDS, topics.STOCK_COMMANDS)


def arm_on_send(names: Topics, command_topics: Iterable[str] = COMMAND_TOPICS) -> SentHook:
    """The outbox relay's hook: the saga commands of an acknowledged batch start their sagas' deadlines
    (one statement per batch that holds any, in the relay's transaction; none for other batches)."""
    wanted = frozenset(names(t) for t in command_topics)

    async def on_sent(conn: asyncpg.Connection, sent: Sequence[Sent]) -> None:
        commands = [s for s in sent if s.topic in wanted]
        if commands:
            await arm_sent(conn, [s.key for s in commands], [s.event_id for s in commands])

    return on_sent


class PgSagas:
    """The sagas repository on one connection (see ``service.ports.Sagas``)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def claim_and_lock(
        self,
        consumer: str,
        message_ids: Sequence[object],
        order_ids: Sequence[str],
        completing_step: str,
        times: dict[str, tuple[datetime, datetime]] | None = None,
    ) -> tuple[set[object], dict[str, SagaState], dict[str, list[OrderLine]]]:
        return await claim_and_lock(self._conn, consumer, message_ids, order_ids, completing_step, times)

    async def lock_due(
        self, limit: int, times: dict[str, tuple[datetime, datetime]] | None = None
    ) -> tuple[datetime | None, list[SagaState]]:
        return await lock_due_sagas(self._conn, limit, times)

    async def write(
        self,
        states: Sequence[SagaState],
        finished: Sequence[tuple[SagaState, str, str | None]],
        at: datetime,
        messages: Sequence[Outgoing],
        history: Sequence[Entry] = (),
    ) -> None:
        await write_decisions(self._conn, states, finished, at, messages, history)

    async def view(self, order_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        return await saga_view(self._conn, order_id)

    async def unfinished(
        self, *, step: str | None, started_before: datetime | None, limit: int, after: tuple[datetime, str] | None
    ) -> list[dict[str, Any]]:
        return await unfinished_sagas(self._conn, step=step, started_before=started_before, limit=limit, after=after)
