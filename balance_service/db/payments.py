"""SQL of the saga's balance step: per-order payment records, deduction and refund.

A batch of saga commands is two statements inside the consumer's transaction: :func:`claim_and_lock`
(the inbox claim, then the payment records and balances concerned, locked and read) and
:func:`write` (what the domain's ``settle`` decided, with the replies for the outbox). The primary
key of ``order_payments`` is the final guard: a record is only ever *inserted* for an order that
had none when it was read, so a second instance recording the same order fails on the key instead
of taking money twice (:class:`PaymentRecordRacedError`: the caller applies the batch again and
then reads that record).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import asyncpg

from balance_service.domain.errors import PaymentRecordRacedError
from balance_service.domain.payments import Payment, PaymentStatus, Settlement
from shared.db import outbox
from shared.db.inbox import CLAIM_SQL
from shared.messaging.envelope import Outgoing

_COLUMNS = "order_id, user_id, amount, status, balance_after, failure_code, reason, held"

# The inbox claim is the platform's one inbox INSERT (``shared.db.inbox.CLAIM_SQL``), fused here.
# Lock order, the same in every transaction that takes more than one of these locks: inbox ids
# (sorted), payment records (order-id order), balances (user-id order). The UNION ALL runs its
# branches in this order, and ``bal`` reads ``pay`` (for the users of refunded orders) before it
# locks anything. HTTP charges lock one balance, or many with SKIP LOCKED: they never wait for us
# while holding another of these rows.
_CLAIM_AND_LOCK = f"""
WITH new AS ({CLAIM_SQL}), pay AS MATERIALIZED (
    SELECT {_COLUMNS} FROM order_payments WHERE order_id = ANY($3::text[])
    ORDER BY order_id FOR UPDATE
), bal AS MATERIALIZED (
    SELECT user_id, balance FROM balances
    WHERE user_id = ANY(ARRAY(SELECT unnest($4::bigint[]) UNION SELECT user_id FROM pay WHERE user_id IS NOT NULL))
    ORDER BY user_id FOR UPDATE
)
SELECT 'm' AS kind, message_id, NULL::text AS order_id, NULL::bigint AS user_id, NULL::bigint AS amount,
       NULL::text AS status, NULL::bigint AS balance_after, NULL::text AS failure_code, NULL::text AS reason,
       NULL::bigint AS held, NULL::bigint AS balance
FROM new
UNION ALL
SELECT 'p', NULL, order_id, user_id, amount, status, balance_after, failure_code, reason, held, NULL FROM pay
UNION ALL
SELECT 'b', NULL, NULL, user_id, NULL, NULL, NULL, NULL, NULL, NULL, balance FROM bal
"""

# Everything a settled batch changes, and its replies, in one statement. New records are plain
# INSERTs (in order-id order): a record another transaction wrote meanwhile fails the key.
_WRITE = (
    """
WITH created AS (
    INSERT INTO order_payments (order_id, user_id, amount, status, balance_after, failure_code, reason, held)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[],
                         $17::bigint[])
        AS u(order_id, user_id, amount, status, balance_after, failure_code, reason, held)
    ORDER BY order_id
), updated AS (
    UPDATE order_payments p SET status = u.status, held = u.held, updated_at = now()
    FROM unnest($8::text[], $9::text[], $18::bigint[]) AS u(order_id, status, held)
    WHERE p.order_id = u.order_id
), bal AS (
    UPDATE balances b SET balance = u.balance, held = b.held + u.held, updated_at = now()
    FROM unnest($10::bigint[], $11::bigint[], $19::bigint[]) AS u(user_id, balance, held)
    WHERE b.user_id = u.user_id
), hist AS (
    INSERT INTO balance_history (user_id, type, amount, balance_after, order_id, created_at)
    SELECT user_id, type, amount, balance_after, order_id, now()
    FROM unnest($12::bigint[], $13::text[], $14::bigint[], $15::bigint[], $16::text[]) WITH ORDINALITY
        AS h(user_id, type, amount, balance_after, order_id, n)
    ORDER BY n
), m AS (
    """
    + outbox.insert_sql(20)
    + """
)
SELECT 1
"""
)


def _payment(row: asyncpg.Record) -> Payment:
    return Payment(
        row["order_id"],
        row["user_id"],
        row["amount"],
        PaymentStatus(row["status"]),
        row["balance_after"],
        row["failure_code"],
        row["reason"],
        row["held"],
    )


# Orders that completed (``order.completed``): the money their deductions hold stops counting
# toward the users' limit. One statement; the records are locked first (order-id order), then the
# balances (user-id order), as in every transaction here. ``held > 0`` is re-checked on the locked
# row, so a redelivered event (or one of an order that took nothing) changes nothing.
_RELEASE = """
WITH pay AS MATERIALIZED (
    SELECT order_id, user_id, held FROM order_payments
    WHERE order_id = ANY($1::text[]) AND held > 0
    ORDER BY order_id FOR UPDATE
), released AS (
    UPDATE order_payments p SET held = 0, updated_at = now() FROM pay WHERE p.order_id = pay.order_id
), per_user AS MATERIALIZED (
    SELECT user_id, sum(held)::bigint AS held FROM pay GROUP BY user_id
), bal AS MATERIALIZED (
    SELECT user_id FROM balances WHERE user_id IN (SELECT user_id FROM per_user)
    ORDER BY user_id FOR UPDATE
)
UPDATE balances b SET held = b.held - u.held
FROM per_user u JOIN bal USING (user_id)
WHERE b.user_id = u.user_id
"""


class PgPayments:
    """The saga's payment records on one connection (see the module docstring)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def claim_and_lock(
        self,
        consumer: str,
        message_ids: Iterable[uuid.UUID],
        order_ids: Iterable[str],
        user_ids: Iterable[int],
    ) -> tuple[set[uuid.UUID], dict[str, Payment], dict[int, int]]:
        """Record ``message_ids`` in ``consumer``'s inbox, then lock and read the payment records of
        ``order_ids`` and the balances of ``user_ids`` and of the records' users: the new message
        ids, the records that exist, the balances of the users that exist. One round trip."""
        rows = await self._conn.fetch(
            _CLAIM_AND_LOCK, consumer, sorted(set(message_ids)), sorted(set(order_ids)), sorted(set(user_ids))
        )
        new: set[uuid.UUID] = set()
        records: dict[str, Payment] = {}
        balances: dict[int, int] = {}
        for row in rows:
            if row["kind"] == "m":
                new.add(row["message_id"])
            elif row["kind"] == "p":
                records[row["order_id"]] = _payment(row)
            else:
                balances[row["user_id"]] = row["balance"]
        return new, records, balances

    async def write(self, settlement: Settlement, messages: Sequence[Outgoing]) -> None:
        """Write what ``settlement`` changes and add ``messages`` to the outbox: one statement of the
        caller's transaction (nothing when there is nothing to write). A record another
        transaction created meanwhile fails the key: :class:`PaymentRecordRacedError`."""
        if settlement.writes_nothing and not messages:
            return
        try:
            await self._conn.execute(_WRITE, *_write_args(settlement), *outbox.insert_args(messages))
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "order_payments_pkey":
                raise
            raise PaymentRecordRacedError(str(exc)) from exc

    async def release_held(self, order_ids: Sequence[str]) -> int:
        """Stop holding what the completed ``order_ids`` took; return how many users it concerned."""
        if not order_ids:
            return 0
        status: str = await self._conn.execute(_RELEASE, sorted(set(order_ids)))
        return int(status.rsplit(maxsplit=1)[-1])


def _write_args(s: Settlement) -> list[object]:
    created, updated, history = s.created, s.updated, s.history
    return [
        [p.order_id for p in created],
        [p.user_id for p in created],
        [p.amount for p in created],
        [p.status.value for p in created],
        [p.balance_after for p in created],
        [p.failure_code for p in created],
        [p.reason for p in created],
        [p.order_id for p in updated],
        [p.status.value for p in updated],
        list(s.balances),
        list(s.balances.values()),
        [h.user_id for h in history],
        [h.type.value for h in history],
        [h.amount for h in history],
        [h.balance_after for h in history],
        [h.order_id for h in history],
        [p.held for p in created],
        [p.held for p in updated],
        [s.held.get(u, 0) for u in s.balances],
    ]
