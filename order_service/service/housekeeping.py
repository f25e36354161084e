"""Forgetting idempotency keys past their retention (the inbox's is ``shared.wiring``'s job)."""

from __future__ import annotations

import asyncio
import logging

from order_service.service.deps import Deps

log = logging.getLogger(__name__)
IDEMPOTENCY_KEY_HOURS = 48  # the contract promises at least 24


async def expire_idempotency_keys(deps: Deps) -> None:
    async with deps.statement() as uow:
        await uow.keys.expire(IDEMPOTENCY_KEY_HOURS)


async def run_housekeeping(deps: Deps, interval_s: float = 600.0) -> None:
    """Expire keys now and every ``interval_s``, until cancelled."""
    while True:
        try:
            await expire_idempotency_keys(deps)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("housekeeping failed", extra={"error": repr(exc)})
        await asyncio.sleep(interval_s)
