"""What a consumer does once its handler has failed on a batch (never on the happy path).

- Transient failure (:func:`shared.messaging.failures.classify`): the same records are tried again,
  without limit, after a backoff that doubles up to a cap. Nothing is ever set aside for it.
- Deterministic failure: the batch is split in two halves, applied in order (the first half
  before the second, so the records before a bad one are applied first and message order per
  partition holds), recursively, down to single records. A single record that still fails is
  tried ``max_attempts`` times in all, then set aside as a dead letter: stored with the service's
  hook in one transaction (:class:`shared.db.dead_letters.DeadLetterStore`). The consumer then
  commits the batch's offsets as usual, so its partition goes on at once.

Every try is a full run of the handler (its own transaction through the inbox), so a record that
was applied in an earlier try is recognised and not applied twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from shared.db.dead_letters import DeadLetterHook, DeadLetterStore, ErrorKind, RawRecord, raw_of
from shared.messaging.envelope import Incoming
from shared.messaging.failures import classify, describe
from shared.metrics import Metrics

log = logging.getLogger(__name__)

BatchHandler = Callable[[list[Incoming]], Awaitable[None]]


class Recovery:
    """Recovers one consumer group's handler from a failure (see the module docstring)."""

    def __init__(
        self,
        group: str,
        handler: BatchHandler,
        store: DeadLetterStore | None,
        hook: DeadLetterHook | None,
        metrics: Metrics | None,
        *,
        max_attempts: int = 3,
        backoff_s: float = 0.1,
        backoff_max_s: float = 5.0,
    ) -> None:
        self.group = group
        self._handler = handler
        self._store = store
        self._hook = hook
        self._metrics = metrics
        self._max_attempts = max(1, max_attempts)
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s

    async def recover(self, batch: list[Incoming], failure: Exception) -> list[Incoming]:
        """Finish ``batch`` after the handler raised ``failure`` on it: every record applied or
        set aside when this returns; returns those set aside (the rest were applied). Without a
        store, a deterministic failure is raised (the consumer restarts from its committed
        offsets, as it always did)."""
        self._count(failure)
        if classify(failure) == "transient":
            failure = await self._try(batch, retry_after=failure)  # type: ignore[assignment]
            if failure is None:
                return []
        if self._store is None:
            raise failure
        aside: list[Incoming] = []
        await self._split(batch, failure, aside)
        return aside

    async def _split(self, batch: list[Incoming], failure: Exception, aside: list[Incoming]) -> None:
        if len(batch) == 1:
            await self._single(batch[0], failure, aside)
            return
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            failed = await self._try(half)
            if failed is not None:
                await self._split(half, failed, aside)

    async def _single(self, item: Incoming, failure: Exception, aside: list[Incoming]) -> None:
        for attempt in range(1, self._max_attempts):
            await asyncio.sleep(min(self._backoff_s * attempt, self._backoff_max_s))
            failed = await self._try([item])
            if failed is None:
                return
            failure = failed
        aside.append(item)
        log.error(
            "record set aside after %d tries",
            self._max_attempts,
            extra={
                "group": self.group,
                "topic": item.topic,
                "partition": item.partition,
                "offset": item.offset,
                "event_id": str(item.event_id),
                "error": describe(failure),
            },
        )
        await self.set_aside(
            raw_of(item.raw) if item.raw is not None else _raw_of_incoming(item),
            "deterministic",
            describe(failure),
            item,
        )

    async def _try(self, items: list[Incoming], retry_after: Exception | None = None) -> Exception | None:
        """Run the handler on ``items`` until it succeeds (``None``) or fails deterministically
        (that exception); transient failures are waited out, without limit."""
        backoff = self._backoff_s
        failure = retry_after
        while True:
            if failure is not None:
                log.warning(
                    "consumer handler failed (transient); retrying",
                    extra={"group": self.group, "error": describe(failure), "backoff_s": backoff, "size": len(items)},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
            try:
                await self._handler(items)
                return None
            except Exception as exc:
                self._count(exc)
                if classify(exc) == "deterministic":
                    return exc
                failure = exc

    async def set_aside(self, record: RawRecord, kind: ErrorKind, error: str, item: Incoming | None = None) -> None:
        """Store ``record`` as a dead letter (with the hook), retrying transient failures; a hook
        that fails deterministically is skipped rather than halting the partition (logged)."""
        assert self._store is not None
        hook = self._hook
        backoff = self._backoff_s
        while True:
            try:
                row_id, fate = await self._store.set_aside(record, self.group, kind, error, hook, item)
                break
            except Exception as exc:
                if classify(exc) == "deterministic" and hook is not None:
                    log.error(
                        "dead-letter hook failed; storing without it",
                        extra={"group": self.group, "error": describe(exc)},
                    )
                    hook = None
                    continue
                if classify(exc) == "deterministic":
                    raise
                log.warning(
                    "setting a record aside failed (transient); retrying",
                    extra={"group": self.group, "error": describe(exc), "backoff_s": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
        log.error(
            "dead letter stored",
            extra={
                "group": self.group,
                "dead_letter_id": self._store.public_id(row_id),
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "kind": kind,
                "fate": fate,
            },
        )
        if self._metrics is not None:
            self._metrics.dead_letters.labels(record.topic, kind).inc()
            if fate == "compensation" and item is not None:
                self._metrics.compensations_dead_lettered.labels(record.topic, item.message.event_type).inc()

    def _count(self, exc: BaseException) -> None:
        if self._metrics is not None:
            self._metrics.handler_failures.labels(self.group, classify(exc)).inc()


def _raw_of_incoming(item: Incoming) -> RawRecord:
    """A record rebuilt from a decoded message (for an :class:`Incoming` made without its record)."""
    headers = [(k, v.encode()) for k, v in item.headers.items()]
    if not item.headers:
        headers = [("event-type", item.message.event_type.encode()), ("event-id", str(item.event_id).encode())]
    return RawRecord(
        item.topic,
        item.partition,
        item.offset,
        item.key.encode() if item.key is not None else None,
        item.message.model_dump_json().encode(),
        headers,
    )


__all__ = ["BatchHandler", "Recovery"]
