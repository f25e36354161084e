"""The sweeper: feeds a timeout to every saga past its deadline, on every instance."""

from __future__ import annotations

import asyncio
import logging

from order_service.service import saga_runner

log = logging.getLogger(__name__)


async def run_sweeper(ctx: saga_runner.SagaContext, interval_s: float, batch: int) -> None:
    """Sweep until cancelled; ``FOR UPDATE SKIP LOCKED`` lets several instances share the work."""
    while True:
        handled = 0
        try:
            handled = await saga_runner.sweep(ctx, batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the sweeper must outlive any database hiccup
            log.warning("saga sweep failed", extra={"error": repr(exc)})
        if handled < batch:
            await asyncio.sleep(interval_s)
