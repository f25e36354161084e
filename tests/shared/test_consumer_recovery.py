"""The consumer after a handler failure, against the real PostgreSQL and Kafka: deterministic
failures split down to the bad record, which is set aside (stored + published) while the records
around it are applied in order; transient failures are retried and never set aside; a replay
delivers a set-aside record again, through the inbox."""

from __future__ import annotations

import asyncio
import uuid
from typing import ClassVar

import asyncpg
import pytest
import pytest_asyncio

from shared.db.dead_letters import DeadLetterStore
from shared.db.migrations import PLATFORM, migrate
from shared.db.outbox import OutboxRelay
from shared.db.pool import close_pool, create_pool
from shared.db.uow import UnitOfWork
from shared.messaging.admin import ensure_topics
from shared.messaging.consumer import BatchConsumer
from shared.messaging.envelope import Incoming, Message, MessageRegistry, Outgoing
from shared.messaging.failures import classify
from shared.messaging.pipeline import Pipeline
from shared.messaging.producer import KafkaPublisher
from shared.web.metrics import Metrics
from shared.wiring import cancel
from tests.support.kafka import produce, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


class Step(Message):
    event_type: ClassVar[str] = "Step"
    n: int


REGISTRY = MessageRegistry([Step])


def _raw(topic: str, msg: Message) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    out = Outgoing(topic, "same-key", msg, "req-recovery")
    return topic, b"same-key", out.value(), [(k, v.encode()) for k, v in out.headers().items()]


class Rig:
    """A database with the platform tables, a topic, and a consumer whose handler applies
    ``Step`` n into ``applied`` (through the inbox), raising what ``fail(n, tries)`` says."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, bootstrap: str, prefix: str, name: str) -> None:
        self.pool = pool
        self.dsn = dsn
        self.alone: dict[int, int] = {}
        self.bootstrap = bootstrap
        self.topic = f"{prefix}{name}.steps"
        self.dead_topic = f"{prefix}{name}.dead-letter"
        self.group = f"{prefix}{name}"
        self.tries: dict[int, int] = {}
        self.fail = lambda n, tries: None
        self.metrics = Metrics("test")
        self.store = DeadLetterStore(pool, "test", self.dead_topic)
        self.consumer = BatchConsumer(
            bootstrap=bootstrap,
            group_id=self.group,
            topics=[self.topic],
            handler=self.handle,
            registry=REGISTRY,
            dead_letters=self.store,
            metrics=self.metrics,
            max_attempts=3,
            retry_backoff_max_s=0.2,
        )

    async def apply_one(self, uow: UnitOfWork, item: Incoming) -> None:
        n = item.message.n  # type: ignore[attr-defined]
        self.tries[n] = self.tries.get(n, 0) + 1
        error = self.fail(n, self.tries[n])
        if error is not None:
            raise error
        await uow.conn.execute("INSERT INTO applied (n) VALUES ($1)", n)

    async def handle(self, batch: list[Incoming]) -> None:
        if len(batch) == 1:
            n = batch[0].message.n  # type: ignore[attr-defined]
            self.alone[n] = self.alone.get(n, 0) + 1
        await Pipeline(lambda: UnitOfWork(self.pool), "steps").apply_each(batch, self.apply_one)

    async def applied(self) -> list[int]:
        return [r["n"] for r in await self.pool.fetch("SELECT n FROM applied ORDER BY seq")]

    async def dead(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT * FROM dead_letters ORDER BY id")

    async def consume_until(self, **rows: int) -> None:
        """Run the consumer until each table named has at least that many rows."""
        task = asyncio.create_task(self.consumer.run())
        try:
            for table, n in rows.items():
                await _until(lambda table=table, n=n: _count(self.pool, table, n))
        finally:
            await cancel(task)


@pytest_asyncio.fixture
async def rig(new_database, kafka_bootstrap, topic_prefix):
    dsn = await new_database("recovery")
    await migrate(dsn, [PLATFORM])
    pool = await create_pool(dsn, 1, 6)
    await pool.execute("CREATE TABLE applied (seq bigserial PRIMARY KEY, n int NOT NULL)")
    found = Rig(pool, dsn, kafka_bootstrap, topic_prefix, f"rec{uuid.uuid4().hex[:6]}")
    await ensure_topics(kafka_bootstrap, [found.topic, found.dead_topic], partitions=2)
    yield found
    await close_pool(pool)


async def _until(check, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_a_deterministic_failure_sets_the_record_aside_and_the_partition_goes_on(rig: Rig) -> None:
    rig.fail = lambda n, tries: asyncpg.DataError("value out of int64 range") if n in (4, 7) else None
    messages = [Step(n=n) for n in range(1, 11)]
    await produce(rig.bootstrap, [_raw(rig.topic, m) for m in messages] + [(rig.topic, b"same-key", b"{", [])])
    task = asyncio.create_task(rig.consumer.run())
    publisher = KafkaPublisher(rig.bootstrap, client_id="recovery-relay")
    relay = asyncio.create_task(OutboxRelay(rig.pool, rig.dsn, publisher, poll_interval_s=0.2).run())
    try:
        await _until(lambda: _count(rig.pool, "dead_letters", 3))
        await _until(lambda: _count(rig.pool, "applied", 8))
        copies = await read_topic(rig.bootstrap, rig.dead_topic, until=lambda rs: len(rs) >= 3)
        consumed = rig.metrics.messages_consumed  # counted once the batch's offsets are committed

        async def counted() -> bool:
            return sum(consumed.labels(rig.topic, o)._value.get() for o in ("ok", "dead_letter")) >= 11

        await _until(counted)
    finally:
        await cancel(relay)
        await cancel(task)
        await publisher.close()
    # Every other record applied once, in partition order (those before a bad one first).
    assert await rig.applied() == [1, 2, 3, 5, 6, 8, 9, 10]
    dead = sorted(await rig.dead(), key=lambda d: d["kafka_offset"])
    assert [(d["error_kind"], d["event_id"]) for d in dead[:2]] == [
        ("deterministic", messages[3].event_id),
        ("deterministic", messages[6].event_id),
    ]
    assert rig.alone[4] == 3 and rig.alone[7] == 3  # the bounded tries of the record alone
    assert dead[2]["error_kind"] == "undecodable" and bytes(dead[2]["payload"]) == b"{"
    assert "DataError" in dead[0]["error"] and dead[0]["topic"] == rig.topic
    assert dead[0]["kafka_offset"] == 3 and bytes(dead[0]["msg_key"]) == b"same-key"
    assert {d["kafka_partition"] for d in dead} == {dead[0]["kafka_partition"]}
    # Published once each on the dead-letter topic, through the outbox.
    assert sorted(int(dict(c.headers)["dlq-offset"]) for c in copies) == [3, 6, 10]
    assert {dict(c.headers)["dlq-id"].decode() for c in copies} == {f"test-{d['id']}" for d in dead}
    assert rig.metrics.dead_letters.labels(rig.topic, "deterministic")._value.get() == 2
    assert rig.metrics.dead_letters.labels(rig.topic, "undecodable")._value.get() == 1
    assert rig.metrics.handler_failures.labels(rig.group, "deterministic")._value.get() >= 6
    # A record set aside is consumed as a dead letter, not "ok"
    assert consumed.labels(rig.topic, "ok")._value.get() == 8
    assert consumed.labels(rig.topic, "dead_letter")._value.get() == 3
    # The offsets are committed past the dead letters: a new consumer of the group finds nothing.
    assert await rig.pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_transient_failures_are_retried_and_never_set_aside(rig: Rig) -> None:
    def fail(n: int, tries: int) -> Exception | None:
        if n == 2 and tries <= 4:
            return ConnectionResetError("connection reset by peer")
        if n == 3 and tries <= 4:
            return asyncpg.TooManyConnectionsError("sorry, too many clients already")
        return None

    rig.fail = fail
    await produce(rig.bootstrap, [_raw(rig.topic, Step(n=n)) for n in range(1, 5)])
    await rig.consume_until(applied=4)
    assert await rig.applied() == [1, 2, 3, 4]
    assert await rig.dead() == []
    assert rig.tries[2] > 3 and rig.tries[3] > 3  # more tries than the deterministic bound (3)
    assert rig.metrics.handler_failures.labels(rig.group, "transient")._value.get() >= 4


async def test_a_record_that_fails_once_then_succeeds_is_not_set_aside(rig: Rig) -> None:
    rig.fail = lambda n, tries: ValueError("flaky") if n == 2 and tries <= 2 else None
    await produce(rig.bootstrap, [_raw(rig.topic, Step(n=n)) for n in range(1, 4)])
    await rig.consume_until(applied=3)
    assert await rig.applied() == [1, 2, 3]
    assert await rig.dead() == []


async def test_replay_delivers_the_record_again_through_the_inbox(rig: Rig) -> None:
    broken = {"on": True}
    rig.fail = lambda n, tries: asyncpg.CheckViolationError("broken") if n == 2 and broken["on"] else None
    first = Step(n=2)
    await produce(rig.bootstrap, [_raw(rig.topic, Step(n=1)), _raw(rig.topic, first), _raw(rig.topic, Step(n=3))])
    task = asyncio.create_task(rig.consumer.run())
    try:
        await _until(lambda: _count(rig.pool, "dead_letters", 1))
        await _until(lambda: _count(rig.pool, "applied", 2))
        letter = (await rig.store.page(10))[0]
        # Still broken: set aside again, as a new dead letter.
        await rig.consumer.replay(letter.record)
        assert len(await rig.dead()) == 2
        broken["on"] = False  # the cause is fixed
        await rig.consumer.replay(letter.record)
        await rig.consumer.replay(letter.record)  # once applied, a replay changes nothing more
    finally:
        await cancel(task)
    assert sorted(await rig.applied()) == [1, 2, 3]
    assert len(await rig.dead()) == 2
    assert letter.event_id == first.event_id


async def _count(pool: asyncpg.Pool, table: str, n: int) -> bool:
    return await pool.fetchval(f"SELECT count(*) FROM {table}") >= n


async def test_classification() -> None:
    import asyncpg.exceptions._base as base

    for exc in (
        ConnectionResetError(),
        TimeoutError(),
        asyncpg.SerializationError("x"),
        asyncpg.DeadlockDetectedError("x"),
        asyncpg.TooManyConnectionsError("x"),
        asyncpg.CannotConnectNowError("x"),
        asyncpg.InterfaceError("pool is closing"),
        asyncpg.ConnectionDoesNotExistError("x"),
    ):
        assert classify(exc) == "transient", exc
    wrapped = RuntimeError("while applying")
    wrapped.__cause__ = ConnectionRefusedError()
    assert classify(wrapped) == "transient"
    for exc in (
        asyncpg.DataError("x"),
        base.DataError("invalid input for query argument $1"),
        asyncpg.UniqueViolationError("x"),
        asyncpg.CheckViolationError("x"),
        ValueError(),
        KeyError(),
    ):
        assert classify(exc) == "deterministic", exc
    during = ValueError("bad record")
    during.__context__ = asyncpg.SerializationError("x")  # raised while a conflict was handled
    assert classify(during) == "deterministic"


async def test_consumer_lag_is_the_records_not_yet_processed(rig: Rig) -> None:
    group = f"{rig.group}-lag"
    seen: list[float | None] = []
    partitions: set[int] = set()

    def lag(partition: int) -> float | None:
        labels = {"group": group, "topic": rig.topic, "partition": str(partition)}
        return rig.metrics.registry.get_sample_value("kafka_consumer_lag_records", labels)

    async def handle(batch: list[Incoming]) -> None:
        partitions.add(batch[0].partition)
        seen.append(lag(batch[0].partition))

    consumer = BatchConsumer(
        bootstrap=rig.bootstrap,
        group_id=group,
        topics=[rig.topic],
        handler=handle,
        registry=REGISTRY,
        metrics=rig.metrics,
        max_records=5,
    )
    await produce(rig.bootstrap, [_raw(rig.topic, Step(n=n)) for n in range(20)])
    task = asyncio.create_task(consumer.run())

    async def done() -> bool:
        return len(seen) >= 4 and lag(next(iter(partitions))) == 0

    try:
        await _until(done)
    finally:
        await cancel(task)
    assert len(partitions) == 1  # one key, one partition
    assert seen[0] is None  # nothing known before the first batch
    assert seen[1:4] == [15, 10, 5]  # after each batch of 5, what was left of the 20


async def test_a_record_with_nul_characters_is_set_aside_as_received(rig: Rig) -> None:
    """PostgreSQL text and jsonb refuse NUL: storing the record must not fail on it."""
    hostile = (rig.topic, b"same-key\x00", b"\x00", [("event-type", b"Step\x00"), ("x\x00", b"\xff\x00")])
    await produce(rig.bootstrap, [hostile, _raw(rig.topic, Step(n=1))])
    await rig.consume_until(applied=1, dead_letters=1)
    letter = (await rig.store.page(10))[0]
    assert letter.record.key == b"same-key\x00" and letter.record.value == b"\x00"
    assert list(letter.record.headers) == [("event-type", b"Step\x00"), ("x\x00", b"\xff\x00")]
    assert letter.error_kind == "undecodable"
