"""The dead-letter store: records a consumer set aside, kept in the service's own database.

Setting a record aside is ONE transaction: the row in ``dead_letters`` (with everything needed
to deliver the record again), its copy for the dead-letter topic in the outbox (so it is
published once, even if Kafka is down right now), and the service's hook (a saga participant
answers a forward command with a ``PROCESSING_FAILED`` reply there). The consumer commits the
record's offset only after that transaction, so a crash in between sets it aside again at most
(the copy on the topic may then appear twice; the stored row is what operators act on).

A dead letter's public id names its service (``balance-42``), so the gateway can route a replay
without asking every service.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
import orjson

from shared.messaging.envelope import Incoming

ErrorKind = Literal["undecodable", "deterministic"]
Fate = Literal["answered", "compensation", "none"]
"""What a service's hook did with a set-aside record: answered it (a failure reply), left a
compensation unanswered (its saga stays COMPENSATING until a replay), or nothing to do."""
DeadLetterHook = Callable[[asyncpg.Connection, Incoming], Awaitable[Fate]]


@dataclass(frozen=True)
class RawRecord:
    """A Kafka record as the consumer received it (what :meth:`MessageRegistry.decode` reads)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class DeadLetter:
    """One stored dead letter."""

    id: int
    group: str
    record: RawRecord
    event_type: str | None
    event_id: uuid.UUID | None
    error_kind: str
    error: str
    failed_at: datetime
    replayed_at: datetime | None


_STORE = """
WITH d AS (
    INSERT INTO dead_letters (consumer_group, topic, kafka_partition, kafka_offset, msg_key, headers,
                              payload, event_type, event_id, error_kind, error)
    VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7, $8, $9, $10, $11)
    RETURNING id, failed_at
), o AS (
    INSERT INTO outbox (topic, msg_key, event_id, event_type, headers, payload)
    SELECT $12, $13, coalesce($9, gen_random_uuid()), coalesce($8, 'unknown'),
           $14::text::jsonb || jsonb_build_object(
               'dlq-id', $15 || '-' || d.id,
               'dlq-at', to_char(d.failed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
           coalesce($7, ''::bytea)
    FROM d
)
SELECT id FROM d
"""
_COLUMNS = """id, consumer_group, topic, kafka_partition, kafka_offset, msg_key, headers, payload,
              event_type, event_id, error_kind, error, failed_at, replayed_at"""
_LIST = f"""
SELECT {_COLUMNS} FROM dead_letters
WHERE $2::timestamptz IS NULL OR (failed_at, $3::text, id) < ($2, $4::text, $5::bigint)
ORDER BY failed_at DESC, id DESC
LIMIT $1
"""
_GET = f"SELECT {_COLUMNS} FROM dead_letters WHERE id = $1"
_REPLAYED = "UPDATE dead_letters SET replayed_at = now() WHERE id = $1"


def clean(text: str) -> str:
    """``text`` as PostgreSQL text and jsonb take it (no NUL character; a hostile record may
    carry one, and setting a record aside must not fail on what made it poison)."""
    return text.replace("\x00", "\ufffd")


def _text(raw: bytes | None) -> str:
    return clean(raw.decode(errors="replace")) if raw is not None else ""


def _stored_headers(headers: Sequence[tuple[str, bytes]]) -> str:
    return orjson.dumps([[_b64(k.encode()), _b64(v or b"")] for k, v in headers]).decode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _json(value: Any) -> Any:
    """A jsonb column's value, whether or not the pool decodes jsonb itself."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _topic_headers(record: RawRecord, kind: str, error: str, group: str, service: str) -> str:
    """Headers of the copy on the dead-letter topic: the original ones (as text) + why and where."""
    headers = {clean(k): _text(v) for k, v in record.headers if not k.startswith("dlq-")}
    headers.update(
        {
            "dlq-reason": clean(error),
            "dlq-kind": kind,
            "dlq-topic": record.topic,
            "dlq-partition": str(record.partition),
            "dlq-offset": str(record.offset),
            "dlq-group": group,
            "dlq-service": service,
        }
    )
    return orjson.dumps(headers).decode()


def _event_id(record: RawRecord) -> uuid.UUID | None:
    for key, value in record.headers:
        if key == "event-id":
            try:
                return uuid.UUID(_text(value))
            except ValueError:
                return None
    return None


def _event_type(record: RawRecord) -> str | None:
    found = [_text(v) for k, v in record.headers if k == "event-type"]
    return found[0][:200] if found else None


def _row(row: asyncpg.Record) -> DeadLetter:
    headers = [(base64.b64decode(k).decode(), base64.b64decode(v)) for k, v in _json(row["headers"])]
    record = RawRecord(
        row["topic"],
        row["kafka_partition"],
        row["kafka_offset"],
        bytes(row["msg_key"]) if row["msg_key"] is not None else None,
        bytes(row["payload"]) if row["payload"] is not None else None,
        headers,
    )
    return DeadLetter(
        row["id"],
        row["consumer_group"],
        record,
        row["event_type"],
        row["event_id"],
        row["error_kind"],
        row["error"],
        row["failed_at"],
        row["replayed_at"],
    )


def raw_of(record: Any) -> RawRecord:
    """A :class:`RawRecord` from an aiokafka ``ConsumerRecord`` (or another ``RawRecord``)."""
    return RawRecord(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        tuple(record.headers or ()),
    )


class DeadLetterStore:
    """The dead letters of one service (``service`` names it in ids and on the topic copies)."""

    def __init__(self, pool: asyncpg.Pool, service: str, topic: str) -> None:
        self.pool = pool
        self.service = service
        self.topic = topic

    def public_id(self, row_id: int) -> str:
        return f"{self.service}-{row_id}"

    def row_id(self, public_id: str) -> int | None:
        """The row id of one of OUR public ids; ``None`` for anything else."""
        service, _, number = public_id.rpartition("-")
        if service != self.service or not (number.isascii() and number.isdigit()) or len(number) > 18:
            return None
        return int(number)

    async def set_aside(
        self,
        record: RawRecord,
        group: str,
        kind: ErrorKind,
        error: str,
        hook: DeadLetterHook | None = None,
        item: Incoming | None = None,
    ) -> tuple[int, Fate]:
        """Store ``record``, queue its copy for the dead-letter topic and run ``hook`` (for a
        decoded ``item``), all in one transaction; return the row id and what the hook did."""
        fate: Fate = "none"
        async with self.pool.acquire() as conn, conn.transaction():
            row_id = await conn.fetchval(
                _STORE,
                group,
                record.topic,
                record.partition,
                record.offset,
                record.key,
                _stored_headers(record.headers),
                record.value,
                _event_type(record),
                _event_id(record),
                kind,
                clean(error),
                self.topic,
                _text(record.key),
                _topic_headers(record, kind, error, group, self.service),
                self.service,
            )
            if hook is not None and item is not None:
                fate = await hook(conn, item)
        return row_id, fate

    async def page(self, limit: int, before: tuple[datetime, str, int] | None = None) -> list[DeadLetter]:
        """Newest first; ``before`` = (failed_at, service, row id) of the last item already seen."""
        at, service, row_id = before if before is not None else (None, None, None)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_LIST, limit, at, self.service, service, row_id)
        return [_row(row) for row in rows]

    async def get(self, row_id: int) -> DeadLetter | None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(_GET, row_id)
        return _row(row) if row is not None else None

    async def mark_replayed(self, row_id: int) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(_REPLAYED, row_id)
