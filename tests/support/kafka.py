"""Reading and writing topics directly in tests."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


async def read_topic(
    bootstrap: str, topic: str, *, until: Callable[[list[Any]], bool], timeout: float = 20.0
) -> list[Any]:
    """Read ``topic`` from the beginning until ``until(records)`` holds or ``timeout`` passes.

    Every step is bounded by a deadline of its own (start, each fetch, stop), so a wedged client
    makes the caller's assertion fail instead of hanging the session.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    records: list[Any] = []
    try:
        await asyncio.wait_for(consumer.start(), timeout)
        while not until(records) and loop.time() < deadline:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=200), 5)
            for batch in batches.values():
                records.extend(batch)
    except TimeoutError:
        pass
    finally:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consumer.stop(), 10)
    return records


async def produce(
    bootstrap: str, records: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]]
) -> None:
    """Send raw ``(topic, key, value, headers)`` records and wait for them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for topic, key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()
