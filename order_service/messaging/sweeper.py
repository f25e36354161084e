"""The sweeper: feeds a timeout to every saga past its deadline, on every instance.

It holds off while this instance's outbox relay met an unreachable broker lately (``hold``): a
deadline armed just before an outage, or just after it while the participants' consumers rejoin
their groups and their relays leave their backoff, says nothing about a participant that does not
answer; timing it out would only fail orders that an outage should merely delay.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from order_service.service import saga_runner
from order_service.service.deps import Deps

log = logging.getLogger(__name__)


def _never() -> bool:
    return False


async def run_sweeper(deps: Deps, interval_s: float, batch: int, hold: Callable[[], bool] = _never) -> None:
    """Sweep until cancelled; the sweep skips sagas another instance holds, so several share the work."""
    holding = False
    while True:
        if hold():
            if not holding:
                log.warning("saga sweep on hold: the broker was unreachable lately")
            holding = True
            await asyncio.sleep(interval_s)
            continue
        if holding:
            log.info("saga sweep resumed")
            holding = False
        handled = 0
        try:
            handled = await saga_runner.sweep(deps, batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("saga sweep failed", extra={"error": repr(exc)})
        if handled < batch:
            await asyncio.sleep(interval_s)
