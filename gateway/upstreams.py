"""Instances of each service, used in turn (round robin), with a small circuit breaker each.

The breaker only counts *connection* failures (refused, unreachable): a slow or failing answer
is the service's business. After ``failures`` in a row the instance is skipped for ``cooldown_s``;
then one request is let through (half-open) and its outcome closes or re-opens the circuit.

Separately, ``Instance.ready`` is the instance's own readiness (its ``/health/ready``, kept up to
date by ``gateway.readiness``): an instance that is not ready is not tried at all.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class Breaker:
    """Consecutive connection failures of one instance."""

    failures: int
    cooldown_s: float
    clock: Callable[[], float] = time.monotonic
    consecutive: int = 0
    opened_at: float | None = None

    def allows(self) -> bool:
        """Closed, or open long enough to try again (the trial re-arms the cooldown)."""
        if self.opened_at is None:
            return True
        now = self.clock()
        if now - self.opened_at >= self.cooldown_s:
            self.opened_at = now  # half-open: one trial, others keep skipping until it ends
            return True
        return False

    def succeeded(self) -> None:
        self.consecutive = 0
        self.opened_at = None

    def failed(self) -> None:
        self.consecutive += 1
        if self.consecutive >= self.failures:
            self.opened_at = self.clock()

    @property
    def state(self) -> str:
        return "closed" if self.opened_at is None else "open"


@dataclass
class Instance:
    """One base URL of a service and its breaker."""

    url: str
    breaker: Breaker
    ready: bool = True


@dataclass
class Upstream:
    """The instances of one service, handed out round robin, skipping open circuits."""

    service: str
    instances: list[Instance]
    _turn: Iterator[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._turn = itertools.cycle(range(len(self.instances)))

    def candidates(self) -> list[Instance]:
        """Every usable instance once, starting with the next one in turn."""
        start = next(self._turn)
        ordered = self.instances[start:] + self.instances[:start]
        return [instance for instance in ordered if instance.ready and instance.breaker.allows()]


def build_upstream(service: str, urls: list[str], failures: int, cooldown_s: float) -> Upstream:
    """An :class:`Upstream` over ``urls``."""
    return Upstream(service, [Instance(url, Breaker(failures, cooldown_s)) for url in urls])
