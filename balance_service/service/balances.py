"""Use cases of balances: ``get_balance``, ``charge`` (optionally idempotent, batched without a
key) and ``history``."""

from __future__ import annotations

from dataclasses import dataclass

from balance_service.domain.commands import Charge
from balance_service.domain.errors import UserNotFoundError
from balance_service.domain.model import MAX_BALANCE, Balance, ChargeResult, HistoryRecord, charge_result
from balance_service.service import idempotency
from balance_service.service.ports import UnitOfWorkFactory
from shared.batching import Batcher


@dataclass(frozen=True)
class Charged:
    user_id: int
    balance: int
    charged: int


async def charge_alone(uow: UnitOfWorkFactory, cmd: Charge) -> Charged:
    """Add to the balance in one atomic statement; with an Idempotency-Key, at most once per key."""
    async with uow(single_statement=True) as single:
        if cmd.idempotency_key is None:
            before, after, held = await single.balances.charge(cmd.user_id, cmd.amount, MAX_BALANCE)
        else:
            recorded = await single.balances.charge_once(
                cmd.user_id, cmd.amount, MAX_BALANCE, cmd.idempotency_key, cmd.fingerprint
            )
            before, after, held = recorded if recorded is not None else await idempotency.replay(single.keys, cmd)
    return Charged(cmd.user_id, charge_result(cmd.user_id, cmd.amount, before, after, held), cmd.amount)


class Charges:
    """Charges without an Idempotency-Key, applied in batches: concurrent requests share one
    statement and one commit (:class:`shared.batching.Batcher`). Same results as :func:`charge_alone`.

    A batch charges distinct users at once and never waits for a row lock. A second charge of the
    same user in the batch, a charge whose row another transaction holds and a charge of an
    unknown user are then made alone by their own request, so a held row never stalls a batch.
    """

    def __init__(self, uow: UnitOfWorkFactory, *, max_batch: int = 128, max_flushes: int = 2) -> None:
        self._uow = uow
        self.batcher: Batcher[tuple[int, int], ChargeResult | None] = Batcher(
            self._flush, max_batch=max_batch, max_flushes=max_flushes
        )

    async def charge(self, cmd: Charge) -> Charged:
        if cmd.idempotency_key is not None:
            return await charge_alone(self._uow, cmd)
        outcome = await self.batcher.submit((cmd.user_id, cmd.amount))
        if outcome is None:
            return await charge_alone(self._uow, cmd)
        before, after, held = outcome
        return Charged(cmd.user_id, charge_result(cmd.user_id, cmd.amount, before, after, held), cmd.amount)

    async def _flush(self, items: list[tuple[int, int]]) -> list[ChargeResult | None]:
        first: dict[int, int] = {}
        for n, (user_id, _) in enumerate(items):
            first.setdefault(user_id, n)
        async with self._uow(single_statement=True) as single:
            done = await single.balances.charge_many([items[n] for n in first.values()], MAX_BALANCE)
        return [done.get(user_id) if first[user_id] == n else None for n, (user_id, _) in enumerate(items)]


async def charge(charges: Charges, cmd: Charge) -> Charged:
    """``POST /users/{user_id}/balance/charge``: batched with concurrent charges unless keyed."""
    return await charges.charge(cmd)


async def get_balance(uow: UnitOfWorkFactory, user_id: int) -> Balance:
    async with uow(single_statement=True) as single:
        balance = await single.balances.get(user_id)
    if balance is None:
        raise UserNotFoundError(user_id)
    return balance


async def history(uow: UnitOfWorkFactory, user_id: int, *, before_id: int | None, limit: int) -> list[HistoryRecord]:
    """Up to ``limit`` entries older than ``before_id`` (all when ``None``), newest first."""
    async with uow(single_statement=True) as single:
        rows = await single.balances.history(user_id, before_id or 2**63 - 1, limit)
        if not rows and not await single.balances.user_exists(user_id):
            raise UserNotFoundError(user_id)
    return rows
