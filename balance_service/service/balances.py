"""Use cases of balances: read, charge (optionally idempotent), history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from balance_service.db import balances as balances_db
from balance_service.domain.commands import Charge
from balance_service.domain.errors import UserNotFoundError
from balance_service.domain.model import MAX_BALANCE, charge_result
from balance_service.service import idempotency
from balance_service.service.unit_of_work import SingleStatement
from shared.batching import Batcher


@dataclass(frozen=True)
class Balance:
    user_id: int
    balance: int
    updated_at: datetime


@dataclass(frozen=True)
class Charged:
    user_id: int
    balance: int
    charged: int


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    type: str
    amount: int
    balance_after: int
    order_id: str | None
    created_at: datetime


async def charge(pool: asyncpg.Pool, cmd: Charge) -> Charged:
    """Add to the balance in one atomic statement; with an Idempotency-Key, at most once per key."""
    async with SingleStatement(pool) as single:
        conn = single.conn
        if cmd.idempotency_key is None:
            before, after, held = await balances_db.charge(conn, cmd.user_id, cmd.amount, MAX_BALANCE)
        else:
            try:
                before, after, held = await balances_db.charge_once(
                    conn, cmd.user_id, cmd.amount, MAX_BALANCE, cmd.idempotency_key, cmd.fingerprint
                )
            except balances_db.KeyTaken:
                before, after, held = await idempotency.replay(conn, cmd)
    return Charged(cmd.user_id, charge_result(cmd.user_id, cmd.amount, before, after, held), cmd.amount)


BeforeAfter = balances_db.ChargeResult


class Charges:
    """Charges without an Idempotency-Key, applied in batches: concurrent requests share one
    statement and one commit (:class:`shared.batching.Batcher`). Same results as :func:`charge`.

    A batch charges distinct users at once and never waits for a row lock. A second charge of the
    same user in the batch, a charge whose row another transaction holds and a charge of an
    unknown user are then made alone by their own request, so a held row never stalls a batch.
    """

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 128, max_flushes: int = 2) -> None:
        self._pool = pool
        self.batcher: Batcher[tuple[int, int], BeforeAfter | None] = Batcher(
            self._flush, max_batch=max_batch, max_flushes=max_flushes
        )

    async def charge(self, cmd: Charge) -> Charged:
        if cmd.idempotency_key is not None:
            return await charge(self._pool, cmd)
        outcome = await self.batcher.submit((cmd.user_id, cmd.amount))
        if outcome is None:
            return await charge(self._pool, cmd)
        before, after, held = outcome
        return Charged(cmd.user_id, charge_result(cmd.user_id, cmd.amount, before, after, held), cmd.amount)

    async def _flush(self, items: list[tuple[int, int]]) -> list[BeforeAfter | None]:
        first: dict[int, int] = {}
        for n, (user_id, _) in enumerate(items):
            first.setdefault(user_id, n)
        async with SingleStatement(self._pool) as single:
            done = await balances_db.charge_many(single.conn, [items[n] for n in first.values()], MAX_BALANCE)
        return [done.get(user_id) if first[user_id] == n else None for n, (user_id, _) in enumerate(items)]


async def get_balance(pool: asyncpg.Pool, user_id: int) -> Balance:
    async with SingleStatement(pool) as uow:
        row = await balances_db.get_balance(uow.conn, user_id)
    if row is None:
        raise UserNotFoundError(user_id)
    return Balance(**dict(row))


async def history(pool: asyncpg.Pool, user_id: int, *, before_id: int | None, limit: int) -> list[HistoryEntry]:
    """Up to ``limit`` entries older than ``before_id`` (all when ``None``), newest first."""
    async with SingleStatement(pool) as uow:
        rows = await balances_db.history(uow.conn, user_id, before_id or 2**63 - 1, limit)
        if not rows and not await balances_db.user_exists(uow.conn, user_id):
            raise UserNotFoundError(user_id)
    return [HistoryEntry(**dict(row)) for row in rows]
