"""The batch scheduler: checks the time every second and rolls up each day once after midnight."""

from __future__ import annotations

import asyncio
import logging
from datetime import date

from ranking_service.domain.model import BatchRules
from ranking_service.service.ports import Clock, UnitOfWorkFactory
from ranking_service.service.rollup import catch_up

log = logging.getLogger(__name__)


class Scheduler:
    """Runs :func:`catch_up` whenever the day changes (and at start), until every due day is done."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, rules: BatchRules, instance_id: str, interval_s: float = 1.0
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._rules = rules
        self._instance_id = instance_id
        self._interval = interval_s
        self.settled_for: date | None = None  # the "today" for which all earlier days are done
        self.rolled_up: list[date] = []  # days this instance rolled up (observability, tests)

    async def tick(self) -> None:
        """One check of the clock; a pass over the due days when the day has changed."""
        today = self._rules.today(self._clock())
        if self.settled_for == today:
            return
        result = await catch_up(self._uow, self._rules, self._instance_id, today)
        self.rolled_up.extend(result.ran)
        if not result.busy:  # another instance is on a day: look again next second
            self.settled_for = today

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("ranking batch failed; will retry", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval)
