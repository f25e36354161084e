"""Idempotency-Key handling of charges: claim the key first, store the outcome with the change.

The key row is inserted first in the charge's transaction; a racing duplicate blocks on its
primary key until the first commits, then reads the stored outcome. Business refusals (unknown
user, limit) are stored too, so a retry answers the same even if the balance changed since.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from balance_service.db import idempotency as keys_db
from balance_service.domain.commands import Charge
from balance_service.domain.errors import (
    BalanceLimitExceededError, IdempotencyKeyReusedError, UserNotFoundError,
)
from balance_service.domain.model import MAX_BALANCE
from shared.db.uow import UnitOfWork


def _replay(cmd: Charge, outcome: dict[str, Any]) -> int:
    error = outcome.get("error")
    if error == "USER_NOT_FOUND":
        raise UserNotFoundError(cmd.user_id)
    if error == "BALANCE_LIMIT_EXCEEDED":
        raise BalanceLimitExceededError(outcome.get("balance"), cmd.amount, MAX_BALANCE)
    return int(outcome["balance"])


async def begin(conn: asyncpg.Connection, cmd: Charge) -> int | None:
    """Claim the key: ``None`` when new, else the stored balance (or the stored error raised)."""
    assert cmd.idempotency_key is not None
    if await keys_db.claim(conn, cmd.user_id, cmd.idempotency_key, cmd.fingerprint):
        return None
    row = await keys_db.stored(conn, cmd.user_id, cmd.idempotency_key)
    if row is None or row["outcome"] is None:  # pragma: no cover - removed by cleanup meanwhile
        raise RuntimeError("idempotency key vanished; retry")
    if row["fingerprint"] != cmd.fingerprint:
        raise IdempotencyKeyReusedError()
    return _replay(cmd, row["outcome"])


async def finish(uow: UnitOfWork, cmd: Charge, balance: int) -> None:
    """Store the success with the key and commit."""
    assert cmd.idempotency_key is not None
    await keys_db.store(uow.conn, cmd.user_id, cmd.idempotency_key, {"balance": balance})
    await uow.commit()


async def finish_with_error(uow: UnitOfWork, cmd: Charge, exc: Exception) -> None:
    """Store a business refusal with the key and commit; other errors roll back."""
    assert cmd.idempotency_key is not None
    if isinstance(exc, UserNotFoundError):
        outcome: dict[str, Any] = {"error": "USER_NOT_FOUND"}
    elif isinstance(exc, BalanceLimitExceededError):
        outcome = {"error": "BALANCE_LIMIT_EXCEEDED", "balance": exc.balance}
    else:
        return
    await keys_db.store(uow.conn, cmd.user_id, cmd.idempotency_key, outcome)
    await uow.commit()
