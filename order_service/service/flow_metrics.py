"""Metrics of the order flow: outcomes, saga duration, per-step latency and timeouts (recorded by
the runner after its commit, from what the batch's statements already read), and the unfinished
sagas by step with the age of the oldest (a slow periodic query, see ``shared.db.gauges``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from order_service.domain.saga import TERMINAL, Step

_SAGA_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNFINISHED = tuple(str(s) for s in Step if s not in TERMINAL)


class FlowMetrics:
    """The order flow's metrics in a service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.finished = Counter(
            "orders_finished_total",
            "Orders that reached a final status, by status and failure code (failure_code is empty for COMPLETED)",
            ["status", "failure_code"],
            registry=registry,
        )
        self.saga_seconds = Histogram(
            "saga_duration_seconds",
            "Time from placing an order to its final status",
            ["status"],
            buckets=_SAGA_BUCKETS,
            registry=registry,
        )
        self.step_seconds = Histogram(
            "saga_step_duration_seconds",
            "Time from sending a step's command (its last send) to the reply "
            "that moved the saga on, by step and result (ok, failed)",
            ["step", "result"],
            buckets=_STEP_BUCKETS,
            registry=registry,
        )
        self.timeouts = Counter(
            "saga_step_timeouts_total",
            "Steps whose deadline passed without a reply (each leads to a re-send or a compensation)",
            ["step"],
            registry=registry,
        )
        self.unfinished = Gauge(
            "sagas_unfinished",
            "Sagas not DONE nor FAILED, by step (refreshed periodically)",
            ["step"],
            registry=registry,
        )
        self.oldest = Gauge(
            "saga_oldest_unfinished_age_seconds",
            "Age of the oldest saga not DONE nor FAILED (0 when none; refreshed periodically)",
            registry=registry,
        )
        for step in UNFINISHED:
            self.unfinished.labels(step)

    def record(
        self,
        steps: Iterable[tuple[str, str, str]],
        outcomes: Iterable[tuple[str, str, str | None]],
        times: dict[str, tuple[datetime, datetime]],
        now: datetime,
    ) -> None:
        """``steps``: (order id, step, result) of replies and timeouts that moved a saga; ``outcomes``:
        (order id, status, failure code); ``times``: each saga's (started_at, updated_at) as locked."""
        for order_id, step, result in steps:
            if result == "timeout":
                self.timeouts.labels(step).inc()
            elif order_id in times:
                self.step_seconds.labels(step, result).observe(max((now - times[order_id][1]).total_seconds(), 0))
        for order_id, status, code in outcomes:
            self.finished.labels(status, code or "").inc()
            if order_id in times:
                self.saga_seconds.labels(status).observe(max((now - times[order_id][0]).total_seconds(), 0))

    def show_unfinished(self, counts: dict[str, int], oldest_s: float) -> None:
        """The periodic gauges: unfinished sagas by step, the age of the oldest (the probe's read,
        ``db.sagas.unfinished_by_step``, is wired by ``bootstrap``)."""
        for step in UNFINISHED:
            self.unfinished.labels(step).set(counts.get(step, 0))
        self.oldest.set(oldest_s)
