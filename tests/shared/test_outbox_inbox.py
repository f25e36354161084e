"""Outbox relay and inbox consumer against the real PostgreSQL and Kafka."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import ClassVar

import asyncpg
import pytest

from shared.db.migrations import PLATFORM, migrate
from shared.db.outbox import OutboxRelay, insert_args, insert_sql
from shared.db.pool import close_pool, create_pool
from shared.db.uow import UnitOfWork
from shared.messaging.admin import ensure_topics
from shared.messaging.consumer import BatchConsumer
from shared.messaging.envelope import Incoming, Message, MessageRegistry, Outgoing
from shared.messaging.pipeline import Pipeline
from shared.messaging.producer import KafkaPublisher
from shared.wiring import cancel
from tests.support.kafka import produce, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


class Ping(Message):
    event_type: ClassVar[str] = "Ping"
    n: int


REGISTRY = MessageRegistry([Ping])


async def _database(new_database) -> str:
    dsn = await new_database("outbox")
    await migrate(dsn, [PLATFORM])
    return dsn


async def _write(pool, topic: str, count: int) -> list[uuid.UUID]:
    ids = []
    for start in range(0, count, 50):
        async with UnitOfWork(pool) as uow:
            for n in range(start, min(start + 50, count)):
                msg = Ping(n=n)
                ids.append(msg.event_id)
                uow.publish(topic, f"k{n % 7}", msg, request_id="req-outbox")
            await uow.commit()
    return ids


async def test_two_relays_deliver_every_row_exactly_once(new_database, kafka_bootstrap, topic_prefix) -> None:
    dsn = await _database(new_database)
    topic = f"{topic_prefix}outbox.exactly-once"
    await ensure_topics(kafka_bootstrap, [topic], partitions=4)
    pool = await create_pool(dsn, 2, 10)
    publishers = [KafkaPublisher(kafka_bootstrap, client_id=f"relay{i}") for i in range(2)]
    relays = [OutboxRelay(pool, dsn, p, batch_size=37, poll_interval_s=0.2) for p in publishers]
    tasks = [asyncio.create_task(r.run()) for r in relays]
    try:
        ids = await _write(pool, topic, 1000)
        records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 1000, timeout=60)
        await asyncio.sleep(1.0)  # any duplicate would arrive now
        records += await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) > 1000, timeout=2)
    finally:
        for task in tasks:
            await cancel(task)
        for publisher in publishers:
            await publisher.close()
    seen = Counter(dict(r.headers)["event-id"].decode() for r in records[len(records) // 2 :])
    all_seen = Counter(dict(r.headers)["event-id"].decode() for r in records[: len(records) // 2])
    assert len(records) == 2000  # read twice from the beginning: 1000 each time
    assert set(all_seen) == set(seen) == {str(i) for i in ids}
    assert max(seen.values()) == 1
    first = records[0]
    headers = dict(first.headers)
    assert headers["event-type"] == b"Ping" and headers["request-id"] == b"req-outbox"
    remaining = await pool.fetchval("SELECT count(*) FROM outbox")
    await close_pool(pool)
    assert remaining == 0


async def test_relay_keeps_rows_while_the_broker_is_unreachable(new_database, kafka_bootstrap, topic_prefix) -> None:
    dsn = await _database(new_database)
    topic = f"{topic_prefix}outbox.unreachable"
    pool = await create_pool(dsn, 1, 4)
    dead = KafkaPublisher("127.0.0.1:1", client_id="dead", send_timeout_s=1.0)
    relay = OutboxRelay(pool, dsn, dead, poll_interval_s=0.1)
    task = asyncio.create_task(relay.run())
    try:
        await _write(pool, topic, 5)
        await asyncio.sleep(2.5)
        row = await pool.fetchrow("SELECT count(*) AS n, max(attempts) AS attempts FROM outbox")
    finally:
        await cancel(task)
        await dead.close()
    assert row["n"] == 5 and row["attempts"] >= 1
    assert relay.failed_within(60) and not relay.failed_within(0)  # what the order sweeper's hold reads
    # A healthy relay then delivers them.
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    live = KafkaPublisher(kafka_bootstrap, client_id="live")
    relay = OutboxRelay(pool, dsn, live, poll_interval_s=0.1)
    task = asyncio.create_task(relay.run())
    try:
        records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 5)
    finally:
        await cancel(task)
        await live.close()
        await close_pool(pool)
    assert len(records) == 5


async def test_consumer_with_inbox_applies_a_redelivered_message_once(
    new_database, kafka_bootstrap, topic_prefix
) -> None:
    dsn = await _database(new_database)
    pool = await create_pool(dsn, 1, 4)
    await pool.execute("CREATE TABLE hits (n int PRIMARY KEY, count int NOT NULL)")
    topic = f"{topic_prefix}inbox.pings"
    dlq = f"{topic_prefix}inbox.dead-letter"
    await ensure_topics(kafka_bootstrap, [topic, dlq], partitions=2)

    async def apply_one(uow: UnitOfWork, item: Incoming) -> None:
        await uow.conn.execute(
            "INSERT INTO hits VALUES ($1, 1) ON CONFLICT (n) DO UPDATE SET count = hits.count + 1",
            item.message.n,  # type: ignore[attr-defined]
        )

    async def handler(batch: list[Incoming]) -> None:
        await Pipeline(lambda: UnitOfWork(pool), "pings").apply_each(batch, apply_one)

    ping = Ping(n=1)
    out = Outgoing(topic, "k", ping, "req-1")
    raw = (topic, b"k", out.value(), [(k, v.encode()) for k, v in out.headers().items()])
    other = Outgoing(topic, "k", Ping(n=2))
    # The same message three times (a redelivery), a poison record, and another message.
    await produce(
        kafka_bootstrap,
        [
            raw,
            raw,
            (topic, b"k", b"garbage", [("event-type", b"Ping")]),
            raw,
            (other.topic, b"k", other.value(), [(k, v.encode()) for k, v in other.headers().items()]),
        ],
    )
    publisher = KafkaPublisher(kafka_bootstrap, client_id="dlq")
    consumer = BatchConsumer(
        bootstrap=kafka_bootstrap,
        group_id=f"{topic_prefix}pings",
        topics=[topic],
        handler=handler,
        registry=REGISTRY,
        dead_letter=(publisher, dlq),
    )
    task = asyncio.create_task(consumer.run())
    try:
        for _ in range(100):
            if await pool.fetchval("SELECT count(*) FROM hits") == 2:
                break
            await asyncio.sleep(0.1)
        dead = await read_topic(kafka_bootstrap, dlq, until=lambda rs: len(rs) >= 1)
    finally:
        await cancel(task)
    # A second consumer of the same group starts from the committed offsets: nothing re-applied,
    # and even a full replay from the start changes nothing.
    replay = BatchConsumer(
        bootstrap=kafka_bootstrap,
        group_id=f"{topic_prefix}pings-replay",
        topics=[topic],
        handler=handler,
        registry=REGISTRY,
    )
    task = asyncio.create_task(replay.run())
    try:
        await asyncio.sleep(3)
    finally:
        await cancel(task)
        await publisher.close()
    rows = dict(await pool.fetch("SELECT n, count FROM hits"))
    await close_pool(pool)
    assert rows == {1: 1, 2: 1}
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["dlq-topic"].decode() == topic and b"invalid Ping" in headers["dlq-reason"]


async def test_offsets_of_every_batch_are_committed_by_the_time_the_consumer_stops(
    kafka_bootstrap, topic_prefix
) -> None:
    """The commit runs behind the next batch, yet a stop (or a rebalance) waits for the last one:
    a new member of the group starts exactly after what was processed, batch after batch."""
    topic = f"{topic_prefix}commits.pings"
    group = f"{topic_prefix}commits"
    await ensure_topics(kafka_bootstrap, [topic], partitions=3)

    def records(numbers: range) -> list:
        out = [Outgoing(topic, f"k{n % 5}", Ping(n=n)) for n in numbers]
        return [(o.topic, o.key.encode(), o.value(), [(k, v.encode()) for k, v in o.headers().items()]) for o in out]

    async def run_until(seen: list[int], count: int) -> None:
        async def handler(batch: list[Incoming]) -> None:
            seen.extend(item.message.n for item in batch)  # type: ignore[attr-defined]

        consumer = BatchConsumer(
            bootstrap=kafka_bootstrap, group_id=group, topics=[topic], handler=handler, registry=REGISTRY, max_records=7
        )
        task = asyncio.create_task(consumer.run())
        try:
            async with asyncio.timeout(30):
                while len(seen) < count:
                    await asyncio.sleep(0.05)
        finally:
            await cancel(task)

    first: list[int] = []
    await produce(kafka_bootstrap, records(range(60)))
    await run_until(first, 60)
    await produce(kafka_bootstrap, records(range(60, 70)))
    second: list[int] = []
    await run_until(second, 10)
    await asyncio.sleep(0.5)  # anything re-delivered would have arrived with the first batches
    assert sorted(first) == list(range(60)) and sorted(second) == list(range(60, 70))


@pytest.mark.slow
async def test_relay_catches_up_after_the_broker_is_stopped_and_started(
    new_database, private_broker, topic_prefix
) -> None:
    dsn = await _database(new_database)
    topic = f"{topic_prefix}outbox.outage"
    bootstrap = private_broker.bootstrap
    await ensure_topics(bootstrap, [topic], partitions=2)
    pool = await create_pool(dsn, 1, 4)
    publisher = KafkaPublisher(bootstrap, client_id="outage", send_timeout_s=2.0)
    relay = OutboxRelay(pool, dsn, publisher, poll_interval_s=0.2)
    task = asyncio.create_task(relay.run())
    try:
        before = await _write(pool, topic, 20)
        await asyncio.to_thread(private_broker.stop)
        during = await _write(pool, topic, 30)
        await asyncio.sleep(3)
        pending = await pool.fetchval("SELECT count(*) FROM outbox")
        await asyncio.to_thread(private_broker.start)
        records = await read_topic(bootstrap, topic, until=lambda rs: len(rs) >= 50, timeout=60)
        for _ in range(100):
            if await pool.fetchval("SELECT count(*) FROM outbox") == 0:
                break
            await asyncio.sleep(0.1)
        left = await pool.fetchval("SELECT count(*) FROM outbox")
    finally:
        await cancel(task)
        await publisher.close()
        await close_pool(pool)
    assert pending >= 30  # nothing was lost or dropped while the broker was away
    delivered = {dict(r.headers)["event-id"].decode() for r in records}
    assert delivered == {str(i) for i in before + during}
    assert left == 0


async def test_a_consumer_cancelled_while_starting_closes_its_client(kafka_bootstrap, topic_prefix) -> None:
    import gc
    import warnings

    async def handler(batch: list[Incoming]) -> None:
        return None

    for delay in (0.0, 0.05, 0.2):
        consumer = BatchConsumer(
            bootstrap=kafka_bootstrap,
            group_id=f"{topic_prefix}cancel",
            topics=[f"{topic_prefix}cancel"],
            handler=handler,
            registry=REGISTRY,
        )
        task = asyncio.create_task(consumer.run())
        await asyncio.sleep(delay)
        await cancel(task)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert not [w for w in caught if "Unclosed AIOKafkaConsumer" in str(w.message)]


async def test_outbox_rows_in_the_same_statement_as_the_state_change(
    new_database, kafka_bootstrap, topic_prefix
) -> None:
    """``insert_sql``/``insert_args``: state + outbox in one autocommit statement, all or nothing."""
    dsn = await _database(new_database)
    topic = f"{topic_prefix}outbox.one-statement"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    pool = await create_pool(dsn, 1, 4)
    publisher = KafkaPublisher(kafka_bootstrap, client_id="relay-one-statement")
    relay = OutboxRelay(pool, dsn, publisher, poll_interval_s=0.2)
    await pool.execute("CREATE TABLE things (id int PRIMARY KEY)")
    sql = f"WITH a AS (INSERT INTO things (id) VALUES ($1)), m AS ({insert_sql(2)}) SELECT 1"
    first = [Outgoing(topic, "k", Ping(n=1), "req-one"), Outgoing(topic, "k", Ping(n=2), "req-one")]
    await pool.execute(sql, 1, *insert_args(first))
    with pytest.raises(asyncpg.UniqueViolationError):  # the state change fails: no message either
        await pool.execute(sql, 1, *insert_args([Outgoing(topic, "k", Ping(n=3))]))
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 2
    task = asyncio.create_task(relay.run())
    try:
        records = await read_topic(kafka_bootstrap, topic, until=lambda rs: len(rs) >= 2, timeout=30)
        deadline = asyncio.get_running_loop().time() + 20
        while (remaining := await pool.fetchval("SELECT count(*) FROM outbox")) and (
            asyncio.get_running_loop().time() < deadline
        ):
            await asyncio.sleep(0.05)  # the relay deletes the rows once the broker acknowledged them
    finally:
        await cancel(task)
        await publisher.close()
    await close_pool(pool)
    assert [dict(r.headers)["event-id"].decode() for r in records] == [str(m.message.event_id) for m in first]
    assert all(dict(r.headers)["request-id"] == b"req-one" for r in records)
    assert remaining == 0


async def test_relay_runs_its_sent_hook_in_the_publishing_transaction(
    new_database, kafka_bootstrap, topic_prefix
) -> None:
    """The hook sees exactly the acknowledged rows and commits with their delete; a failing hook
    rolls the delete back (the rows stay and are sent again)."""
    dsn = await _database(new_database)
    topic = f"{topic_prefix}outbox.hook"
    await ensure_topics(kafka_bootstrap, [topic], partitions=1)
    pool = await create_pool(dsn, 1, 4)
    await pool.execute("CREATE TABLE acked (event_id uuid PRIMARY KEY, topic text, key text)")
    publisher = KafkaPublisher(kafka_bootstrap, client_id="hook")

    async def broken(conn, sent) -> None:
        await conn.execute("INSERT INTO acked SELECT unnest($1::uuid[])", [s.event_id for s in sent])
        raise asyncpg.PostgresError("the hook failed")

    async def record(conn, sent) -> None:
        await conn.execute(
            "INSERT INTO acked SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])",
            [s.event_id for s in sent],
            [s.topic for s in sent],
            [s.key for s in sent],
        )

    try:
        ids = await _write(pool, topic, 12)
        with pytest.raises(asyncpg.PostgresError):
            await OutboxRelay(pool, dsn, publisher, on_sent=broken).publish_batch()
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 12
        assert await pool.fetchval("SELECT count(*) FROM acked") == 0
        assert await OutboxRelay(pool, dsn, publisher, on_sent=record).publish_batch() == 12
        rows = await pool.fetch("SELECT event_id, topic, key FROM acked")
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await publisher.close()
        await close_pool(pool)
    assert {r["event_id"] for r in rows} == set(ids)
    assert {(r["topic"], r["key"]) for r in rows} == {(topic, f"k{n % 7}") for n in range(12)}
