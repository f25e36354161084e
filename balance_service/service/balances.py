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
            before, after = await balances_db.charge(conn, cmd.user_id, cmd.amount, MAX_BALANCE)
        else:
            try:
                before, after = await balances_db.charge_once(
                    conn, cmd.user_id, cmd.amount, MAX_BALANCE, cmd.idempotency_key, cmd.fingerprint
                )
            except balances_db.KeyTaken:
                before, after = await idempotency.replay(conn, cmd)
    return Charged(cmd.user_id, charge_result(cmd.user_id, cmd.amount, before, after), cmd.amount)


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
