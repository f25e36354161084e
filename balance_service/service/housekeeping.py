"""Periodic deletion of Idempotency-Keys past their time (inbox rows are purged by
``shared.wiring``'s retention job, for every service alike)."""

from __future__ import annotations

import asyncio
import logging

from balance_service.db.errors import DATABASE_ERRORS
from balance_service.service.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)


async def clean_once(uow: UnitOfWorkFactory, *, key_hours: float) -> int:
    """Delete expired keys; returns how many went."""
    async with uow(single_statement=True) as single:
        return await single.keys.delete_older_than(key_hours)


async def run(uow: UnitOfWorkFactory, *, interval_s: float, key_hours: float) -> None:
    """Clean every ``interval_s`` until cancelled; a failure is logged and retried next time."""
    while True:
        try:
            await clean_once(uow, key_hours=key_hours)
        except DATABASE_ERRORS as exc:
            log.warning("cleanup failed", extra={"error": repr(exc)})
        await asyncio.sleep(interval_s)
