"""The transactional outbox: write messages with the state change, publish them afterwards.

:func:`enqueue` inserts rows in the caller's transaction (one round trip for any number).
:class:`OutboxRelay` publishes them: it wakes on ``LISTEN outbox`` (polling as a fallback),
claims and deletes the oldest rows in one statement (``FOR UPDATE SKIP LOCKED``, so several
instances share the work) inside a transaction, sends them as one batch, and commits the delete
only when the broker acknowledged them; when the send fails the transaction rolls back, the rows
stay and the relay backs off while Kafka is down. Rows are claimed oldest first and sent in id
order, so one relay publishes in commit order per key.

A service may pass ``on_sent``: a hook the relay runs with the batch just acknowledged by the
broker, on the relay's connection, inside its transaction and before the COMMIT, so whatever the
hook records commits exactly when the rows leave the outbox (a failed send, or a failing hook,
rolls both back and the rows are sent again later, a duplicate the consumers drop by event id).
The order service arms its saga deadlines there; the relay knows nothing of what the hook does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import asyncpg
import orjson

from shared.db.listen import listen
from shared.messaging.envelope import Outgoing
from shared.messaging.producer import KafkaPublisher, PublishError
from shared.metrics import Metrics

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO outbox (topic, msg_key, event_id, event_type, headers, payload)
SELECT t, k, e, et, h::jsonb, p
FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::bytea[])
    AS u(t, k, e, et, h, p)
"""
_CLAIM = """
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
)
RETURNING id, topic, msg_key, event_id, headers, payload
"""


class Sent(NamedTuple):
    """One outbox row the broker acknowledged, as the ``on_sent`` hook sees it."""

    topic: str
    key: str
    event_id: Any  # uuid.UUID


SentHook = Callable[[asyncpg.Connection, Sequence[Sent]], Awaitable[None]]


def insert_sql(first: int) -> str:
    """The outbox INSERT reading its six arrays from ``$first`` .. ``$first+5`` (see :func:`insert_args`).

    For a service that writes its state change and its messages in ONE statement (data-modifying
    CTEs are atomic, so no BEGIN/COMMIT round trips are needed): ``WITH a AS (...), m AS (<this>) ...``.
    """
    n = [f"${first + i}" for i in range(6)]
    return (
        "INSERT INTO outbox (topic, msg_key, event_id, event_type, headers, payload)"
        " SELECT t, k, e, et, h::jsonb, p"
        f" FROM unnest({n[0]}::text[], {n[1]}::text[], {n[2]}::uuid[], {n[3]}::text[], {n[4]}::text[],"
        f" {n[5]}::bytea[]) AS u(t, k, e, et, h, p)"
    )


def insert_args(messages: Sequence[Outgoing]) -> tuple[list[Any], ...]:
    """The six arrays :func:`insert_sql` reads."""
    return (
        [m.topic for m in messages],
        [m.key for m in messages],
        [m.message.event_id for m in messages],
        [m.message.event_type for m in messages],
        [orjson.dumps(m.headers()).decode() for m in messages],
        [m.value() for m in messages],
    )


async def enqueue(conn: asyncpg.Connection, messages: Sequence[Outgoing]) -> None:
    """Add ``messages`` to the outbox inside the caller's transaction."""
    if not messages:
        return
    await conn.execute(_INSERT, *insert_args(messages))


def _record(row: asyncpg.Record) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    headers = [(k, str(v).encode()) for k, v in row["headers"].items()]
    return row["topic"], row["msg_key"].encode(), bytes(row["payload"]), headers


class OutboxRelay:
    """Publishes outbox rows to Kafka until stopped."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        publisher: KafkaPublisher,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        metrics: Metrics | None = None,
        on_sent: SentHook | None = None,
    ) -> None:
        self._pool = pool
        self._on_sent = on_sent
        self._dsn = dsn
        self._publisher = publisher
        self._batch_size = batch_size
        self._poll_interval = poll_interval_s
        self._metrics = metrics
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.last_failure: float | None = None
        """``time.monotonic()`` of the last failed publish (the broker unreachable), None if none yet."""

    def failed_within(self, seconds: float) -> bool:
        """Whether a publish failed in the last ``seconds``: the broker was unreachable lately."""
        return self.last_failure is not None and time.monotonic() - self.last_failure < seconds

    async def run(self) -> None:
        """Relay forever: publish while there is work, then wait for a notice or the poll."""
        listener = asyncio.create_task(self._listen(), name="outbox-listen")
        backoff = 0.1
        try:
            while True:
                self._wake.clear()
                try:
                    sent = await self.publish_batch()
                except (PublishError, OSError, asyncpg.PostgresError) as exc:
                    if isinstance(exc, PublishError):
                        self.last_failure = time.monotonic()
                    log.warning("outbox publish failed", extra={"error": str(exc), "backoff_s": backoff})
                    if self._metrics:
                        self._metrics.outbox_failures.inc()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.1
                if sent == self._batch_size:
                    continue
                self.idle.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
                self.idle.clear()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def publish_batch(self) -> int:
        """Claim, publish and delete one batch; return how many rows were published.

        BEGIN, claim-and-delete, send, [``on_sent``], COMMIT: the delete becomes visible only once the
        broker acknowledged the batch; a failed send rolls it back (and counts an attempt on the rows)."""
        failure: PublishError | None = None
        async with self._pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                rows = sorted(await conn.fetch(_CLAIM, self._batch_size), key=lambda row: row["id"])
                if rows:
                    await self._publisher.send_raw([_record(row) for row in rows])
                    if self._on_sent is not None:
                        await self._on_sent(conn, [Sent(r["topic"], r["msg_key"], r["event_id"]) for r in rows])
            except PublishError as exc:
                failure = exc
                await tx.rollback()
                await conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = ANY($1::bigint[])",
                    [row["id"] for row in rows],
                    str(exc)[:500],
                )
            except BaseException:
                await tx.rollback()
                raise
            else:
                await tx.commit()
        if failure is not None:
            raise failure
        if self._metrics:
            for row in rows:
                self._metrics.outbox_published.labels(row["topic"]).inc()
        return len(rows)

    async def _listen(self) -> None:
        """Hold a connection that LISTENs for new rows; reconnect when it drops."""
        await listen(
            self._dsn,
            "outbox",
            lambda _payload: self._wake.set(),
            on_connect=self._wake.set,  # rows may have arrived while we were not listening
            name="outbox listener",
        )
