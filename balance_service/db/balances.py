"""SQL of balances and their history: every change is one conditional statement."""

from __future__ import annotations

import asyncpg

# The limit is the WHERE clause: concurrent charges serialise on the row and each re-checks it
# against the latest balance, so none is lost and none overshoots. ``before`` tells an unknown
# user apart from a refused charge (it reads the statement's snapshot).
_CHARGE_CTES = """
WITH before AS (
    SELECT balance FROM balances WHERE user_id = $1
), upd AS (
    UPDATE balances SET balance = balance + $2, updated_at = now()
    WHERE user_id = $1 AND balance + $2 <= $3
    RETURNING balance, updated_at
), hist AS (
    INSERT INTO balance_history (user_id, type, amount, balance_after, created_at)
    SELECT $1, 'CHARGE', $2, balance, updated_at FROM upd
)"""

_CHARGE = _CHARGE_CTES + """
SELECT (SELECT balance FROM before) AS balance_before, (SELECT balance FROM upd) AS balance_after
"""

# The same charge that also records its Idempotency-Key with the raw result, in one statement.
# A duplicate key fails the INSERT, and with it the whole statement: the charge is undone and
# the caller reads the stored result instead. A racing duplicate waits on the balance row (or
# on the key's index entry) until the first commits, then fails the same way.
_CHARGE_ONCE = _CHARGE_CTES + """, result AS (
    SELECT (SELECT balance FROM before) AS balance_before, (SELECT balance FROM upd) AS balance_after
), k AS (
    INSERT INTO idempotency_keys (user_id, key, fingerprint, outcome)
    SELECT $1, $4, $5, jsonb_build_object('before', balance_before, 'after', balance_after) FROM result
)
SELECT balance_before, balance_after FROM result
"""

_GET = "SELECT user_id, balance, updated_at FROM balances WHERE user_id = $1"

_HISTORY = """
SELECT id, type, amount, balance_after, order_id, created_at FROM balance_history
WHERE user_id = $1 AND id < $2
ORDER BY id DESC
LIMIT $3
"""


async def charge(conn: asyncpg.Connection, user_id: int, amount: int, limit: int) -> tuple[int | None, int | None]:
    """``(balance_before, balance_after)``; after is ``None`` when nothing changed."""
    row = await conn.fetchrow(_CHARGE, user_id, amount, limit)
    assert row is not None
    return row["balance_before"], row["balance_after"]


class KeyTaken(Exception):
    """The Idempotency-Key was recorded before; nothing was changed."""


async def charge_once(
    conn: asyncpg.Connection, user_id: int, amount: int, limit: int, key: str, fingerprint: str
) -> tuple[int | None, int | None]:
    """Like :func:`charge`, recording ``key``; :class:`KeyTaken` when the key exists."""
    try:
        row = await conn.fetchrow(_CHARGE_ONCE, user_id, amount, limit, key, fingerprint)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != "idempotency_keys_pkey":
            raise
        raise KeyTaken() from None
    assert row is not None
    return row["balance_before"], row["balance_after"]


async def get_balance(conn: asyncpg.Connection, user_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(_GET, user_id)


async def history(conn: asyncpg.Connection, user_id: int, before_id: int, limit: int) -> list[asyncpg.Record]:
    """History rows of the user with ``id < before_id``, newest first."""
    return await conn.fetch(_HISTORY, user_id, before_id, limit)


async def user_exists(conn: asyncpg.Connection, user_id: int) -> bool:
    return bool(await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1)", user_id))
