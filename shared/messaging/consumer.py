"""A batch consumer: fetch, process (one database transaction), then commit offsets.

Offsets are committed only after the handler returns, so a crash re-delivers the batch and the
handler's inbox makes the replay a no-op. The commit of a batch's offsets runs while the next
batch is processed (one round trip less on the consumer's serial path); commits stay in order (a
commit starts only when the previous one has finished) and the last one is awaited before a
rebalance hands partitions over and before the consumer stops. A rebalance waits for the
batch in hand to finish and commit.

When the handler fails (see :mod:`shared.messaging.recovery`, which runs only then, so the happy
path costs what it always did): a transient failure is retried without limit, with a capped
backoff; a deterministic one splits the batch down to the failing record, which after a bounded
number of tries is set aside as a dead letter (stored, published to the dead-letter topic, the
service's hook run) and the partition goes on. Undecodable records and unknown event types are
set aside the same way at once. Any other error (a broker failure of the consumer itself)
restarts the consumer after a backoff, from the last committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from shared import tracing
from shared.db.dead_letters import DeadLetterHook, DeadLetterStore, RawRecord, raw_of
from shared.messaging.envelope import Incoming, MessageRegistry, PoisonMessage, rfc3339, utcnow
from shared.messaging.lag import ConsumerLag
from shared.messaging.producer import KafkaPublisher
from shared.messaging.recovery import Recovery
from shared.metrics import Metrics

log = logging.getLogger(__name__)

BatchHandler = Callable[[list[Incoming]], Awaitable[None]]


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka has no type information
    """Lets a rebalance take partitions away only between batches, their offsets committed."""

    def __init__(self, lock: asyncio.Lock, settle: Callable[[], Awaitable[None]]) -> None:
        self._lock = lock
        self._settle = settle

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self._lock:
            await self._settle()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class BatchConsumer:
    """Runs ``handler`` on batches from ``topics`` as consumer group ``group_id``."""

    def __init__(
        self,
        *,
        bootstrap: str,
        group_id: str,
        topics: Sequence[str],
        handler: BatchHandler,
        registry: MessageRegistry,
        dead_letter: tuple[KafkaPublisher, str] | None = None,
        dead_letters: DeadLetterStore | None = None,
        hook: DeadLetterHook | None = None,
        max_attempts: int = 3,
        retry_backoff_max_s: float = 5.0,
        metrics: Metrics | None = None,
        fetch_max_wait_ms: int = 100,
        max_records: int = 500,
        client_id: str | None = None,
        security: dict[str, Any] | None = None,
    ) -> None:
        self.group_id = group_id
        self.topics = list(topics)
        self._bootstrap = bootstrap
        self._handler = handler
        self._registry = registry
        self._dead_letter = dead_letter
        self.dead_letters = dead_letters
        self._metrics = metrics
        self._recovery = Recovery(
            group_id,
            handler,
            dead_letters,
            hook,
            metrics,
            max_attempts=max_attempts,
            backoff_max_s=retry_backoff_max_s,
        )
        self._lag = ConsumerLag(metrics.consumer_lag, group_id) if metrics is not None else None
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._max_records = max_records
        self._client_id = client_id or group_id
        self._security = security or {}
        self._lock = asyncio.Lock()
        self._commit_task: asyncio.Task[None] | None = None
        self.assigned = asyncio.Event()

    async def run(self) -> None:
        """Consume until cancelled, restarting after failures with a capped backoff."""
        backoff = 0.2
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "consumer failed; restarting",
                    extra={"group": self.group_id, "error": repr(exc), "backoff_s": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.2

    def _make_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self.group_id,
            client_id=self._client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            metadata_max_age_ms=30_000,
            **self._security,
        )

    async def _consume(self) -> None:
        consumer = self._make_consumer()
        consumer.subscribe(self.topics, listener=_WaitForBatch(self._lock, self._settle_commit))
        try:
            await asyncio.wait_for(consumer.start(), 30)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
                if consumer.assignment():
                    self.assigned.set()
                if batches:
                    async with self._lock:
                        await self._process(consumer, batches)
                if self._lag is not None:
                    self._lag.observe(consumer, batches)
        finally:
            try:
                await asyncio.wait_for(asyncio.shield(self._settle_commit()), 5)
            except BaseException as exc:
                log.info("last offset commit not confirmed", extra={"group": self.group_id, "error": repr(exc)})
            try:
                await asyncio.wait_for(consumer.stop(), 5)
            except BaseException:
                log.warning("consumer did not stop cleanly", extra={"group": self.group_id})

    async def _process(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Any]]) -> None:
        started = time.perf_counter()
        decoded: list[Incoming] = []
        poison: list[tuple[Any, str]] = []
        for records in batches.values():
            for record in records:
                try:
                    decoded.append(self._registry.decode(record))
                except PoisonMessage as exc:
                    poison.append((record, str(exc)))
        if poison:
            await self._send_to_dead_letter(poison)
        aside: list[Incoming] = []
        if decoded:
            with tracing.consuming(self.group_id, decoded):
                try:
                    await self._handler(decoded)
                except Exception as exc:
                    aside = await self._recovery.recover(decoded, exc)
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
        await self._settle_commit()
        self._commit_task = asyncio.create_task(self._commit(consumer, offsets))
        self._record_metrics(decoded, aside, poison, time.perf_counter() - started)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            await consumer.commit(offsets)
        except CommitFailedError as exc:
            # The group rebalanced under us; the new owner re-reads and the inbox dedups.
            log.info("offset commit failed after rebalance", extra={"error": repr(exc)})

    async def _settle_commit(self) -> None:
        """Wait for the offset commit in flight; a failure other than a rebalance is raised (the
        consumer then restarts from the offsets last committed)."""
        task, self._commit_task = self._commit_task, None
        if task is not None:
            await task

    def _record_metrics(
        self, decoded: list[Incoming], aside: list[Incoming], poison: list[tuple[Any, str]], took: float
    ) -> None:
        """``messages_consumed_total``: ``ok`` for the records applied, ``dead_letter`` for those
        set aside (undecodable, or failing deterministically after their tries)."""
        if self._metrics is None:
            return
        set_aside = {id(item) for item in aside}
        for item in decoded:
            outcome = "dead_letter" if id(item) in set_aside else "ok"
            self._metrics.messages_consumed.labels(item.topic, outcome).inc()
        for record, _ in poison:
            self._metrics.messages_consumed.labels(record.topic, "dead_letter").inc()
        self._metrics.consumer_batch_seconds.labels(self.group_id).observe(took)

    async def replay(self, record: RawRecord) -> None:
        """Deliver a set-aside record again to this consumer's handler (through its inbox, like
        any record), between batches; failing again, it is set aside again (a new dead letter)."""
        async with self._lock:
            try:
                item = self._registry.decode(record)
            except PoisonMessage as exc:
                await self._send_to_dead_letter([(record, str(exc))])
                return
            try:
                await self._handler([item])
            except Exception as exc:
                await self._recovery.recover([item], exc)

    async def _send_to_dead_letter(self, poison: list[tuple[Any, str]]) -> None:
        for record, reason in poison:
            log.error(
                "poison message",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "reason": reason,
                    "group": self.group_id,
                },
            )
        if self.dead_letters is not None:
            for record, reason in poison:
                await self._recovery.set_aside(raw_of(record), "undecodable", reason)
            return
        if self._dead_letter is None:
            return
        publisher, topic = self._dead_letter
        await publisher.send_raw(
            [
                (topic, record.key, record.value, _dead_letter_headers(record, reason, self.group_id))
                for record, reason in poison
            ]
        )


def _dead_letter_headers(record: Any, reason: str, group: str) -> list[tuple[str, bytes]]:
    original = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq-")]
    return [
        *original,
        ("dlq-reason", reason.encode()),
        ("dlq-topic", record.topic.encode()),
        ("dlq-partition", str(record.partition).encode()),
        ("dlq-offset", str(record.offset).encode()),
        ("dlq-group", group.encode()),
        ("dlq-at", rfc3339(utcnow()).encode()),
    ]


__all__ = ["BatchConsumer", "BatchHandler", "KafkaError"]
