"""SQL of balances and their history: every change is one conditional statement."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from balance_service.domain.model import Balance, ChargeResult, HistoryRecord

# The limit is the WHERE clause: concurrent charges serialise on the row and each re-checks it
# against the latest balance and ``held`` (money taken by orders in flight, which a refund may give
# back; the same row, so the same lock: a racing deduct cannot slip between), so none is lost and
# none overshoots, refunds included. ``before`` tells an unknown user apart from a refused charge
# (it reads the statement's snapshot) and gives the refusal's numbers.
_CHARGE_CTES = """
WITH before AS (
    SELECT balance, held FROM balances WHERE user_id = $1
), upd AS (
    UPDATE balances SET balance = balance + $2, updated_at = now()
    WHERE user_id = $1 AND balance + held + $2 <= $3
    RETURNING balance, updated_at
), hist AS (
    INSERT INTO balance_history (user_id, type, amount, balance_after, created_at)
    SELECT $1, 'CHARGE', $2, balance, updated_at FROM upd
)"""

_CHARGE = (
    _CHARGE_CTES
    + """
SELECT (SELECT balance FROM before) AS balance_before, (SELECT balance FROM upd) AS balance_after,
       (SELECT held FROM before) AS held
"""
)

# The same charge that also records its Idempotency-Key with the raw result, in one statement.
# A duplicate key fails the INSERT, and with it the whole statement: the charge is undone and
# the caller reads the stored result instead. A racing duplicate waits on the balance row (or
# on the key's index entry) until the first commits, then fails the same way.
_CHARGE_ONCE = (
    _CHARGE_CTES
    + """, result AS (
    SELECT (SELECT balance FROM before) AS balance_before, (SELECT balance FROM upd) AS balance_after,
           (SELECT held FROM before) AS held
), k AS (
    INSERT INTO idempotency_keys (user_id, key, fingerprint, outcome)
    SELECT $1, $4, $5, jsonb_build_object('before', balance_before, 'after', balance_after, 'held', held)
    FROM result
)
SELECT balance_before, balance_after, held FROM result
"""
)

# Many charges of distinct users in one statement (and one commit). Rows are locked in user_id
# order and never waited for: a row another transaction holds (a saga's deduct batch, a keyed
# charge) is skipped, its charge reported as not applied, and the caller charges it on its own,
# so a batch can neither deadlock with those nor queue behind them. The limit is checked on the
# locked (latest) balance and held money, as in the single charge.
_CHARGE_MANY = """
WITH req AS (
    SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS r(user_id, amount)
), locked AS (
    SELECT user_id, balance, held FROM balances WHERE user_id = ANY($1::bigint[])
    ORDER BY user_id FOR UPDATE SKIP LOCKED
), upd AS (
    UPDATE balances b SET balance = l.balance + r.amount, updated_at = now()
    FROM locked l JOIN req r USING (user_id)
    WHERE b.user_id = l.user_id AND l.balance + l.held + r.amount <= $3
    RETURNING b.user_id, b.balance, b.updated_at
), hist AS (
    INSERT INTO balance_history (user_id, type, amount, balance_after, created_at)
    SELECT u.user_id, 'CHARGE', r.amount, u.balance, u.updated_at FROM upd u JOIN req r USING (user_id)
)
SELECT r.user_id, l.user_id IS NOT NULL AS applied, l.balance AS balance_before, u.balance AS balance_after,
       l.held
FROM req r LEFT JOIN locked l USING (user_id) LEFT JOIN upd u USING (user_id)
"""

_GET = "SELECT user_id, balance, updated_at FROM balances WHERE user_id = $1"

_HISTORY = """
SELECT id, type, amount, balance_after, order_id, created_at FROM balance_history
WHERE user_id = $1 AND id < $2
ORDER BY id DESC
LIMIT $3
"""


_USER_EXISTS = "SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1)"


def _result(row: asyncpg.Record) -> ChargeResult:
    return row["balance_before"], row["balance_after"], row["held"]


class PgBalances:
    """Balances and their history on one connection: every change is one statement."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def charge(self, user_id: int, amount: int, limit: int) -> ChargeResult:
        """Charge one user in one statement."""
        row = await self._conn.fetchrow(_CHARGE, user_id, amount, limit)
        assert row is not None
        return _result(row)

    async def charge_once(
        self, user_id: int, amount: int, limit: int, key: str, fingerprint: str
    ) -> ChargeResult | None:
        """Like :meth:`charge`, recording ``key``; ``None`` (nothing changed) when the key exists."""
        try:
            row = await self._conn.fetchrow(_CHARGE_ONCE, user_id, amount, limit, key, fingerprint)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name != "idempotency_keys_pkey":
                raise
            return None
        assert row is not None
        return _result(row)

    async def charge_many(self, charges: Sequence[tuple[int, int]], limit: int) -> dict[int, ChargeResult | None]:
        """Charge ``(user_id, amount)`` pairs of distinct users at once: per user ``(before, after,
        held)`` as :meth:`charge` gives it, or ``None`` when the row was locked elsewhere (nothing
        done: charge it alone) or the user does not exist (charging it alone says so)."""
        rows = await self._conn.fetch(_CHARGE_MANY, [u for u, _ in charges], [a for _, a in charges], limit)
        return {row["user_id"]: _result(row) if row["applied"] else None for row in rows}

    async def get(self, user_id: int) -> Balance | None:
        row = await self._conn.fetchrow(_GET, user_id)
        return None if row is None else Balance(**dict(row))

    async def history(self, user_id: int, before_id: int, limit: int) -> list[HistoryRecord]:
        """History rows of the user with ``id < before_id``, newest first."""
        return [HistoryRecord(**dict(row)) for row in await self._conn.fetch(_HISTORY, user_id, before_id, limit)]

    async def user_exists(self, user_id: int) -> bool:
        return bool(await self._conn.fetchval(_USER_EXISTS, user_id))
