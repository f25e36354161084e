"""Idempotency-Keys: replaying a charge whose key was recorded before, and forgetting old keys.

The key is recorded by the charge statement itself, with the raw result of the conditional
update (balance before, balance after, money held by orders in flight). A retry replays that result through the same domain
rule, so it answers exactly as the first time: the same balance, or the same refusal (unknown
user, limit), even if the balance has changed since.
"""

from __future__ import annotations

from balance_service.domain.commands import Charge
from balance_service.domain.errors import IdempotencyKeyReusedError
from balance_service.domain.model import ChargeResult
from balance_service.service.ports import IdempotencyKeysRepository, UnitOfWorkFactory


async def replay(keys: IdempotencyKeysRepository, cmd: Charge) -> ChargeResult:
    """The stored ``(balance_before, balance_after, held)`` of the key; a different body is refused."""
    assert cmd.idempotency_key is not None
    stored = await keys.stored(cmd.user_id, cmd.idempotency_key)
    if stored is None:  # pragma: no cover - only if expired between the two statements
        raise RuntimeError("idempotency key vanished; retry")
    if stored.fingerprint != cmd.fingerprint:
        raise IdempotencyKeyReusedError()
    outcome = stored.outcome
    return outcome["before"], outcome["after"], outcome.get("held")  # keys stored before held: None


async def expire_keys(uow: UnitOfWorkFactory, *, key_hours: float) -> int:
    """Forget the keys older than ``key_hours`` (the contract promises at least 24); how many went."""
    async with uow(single_statement=True) as single:
        return await single.keys.delete_older_than(key_hours)
