"""``kafka_consumer_lag_records{group,topic,partition}``: what a consumer group has yet to process.

The partition's high watermark (the consumer learns it from every fetch response) minus the next
offset to process: for the partitions of each batch, right after it, and every few seconds for all
the assigned ones (from the fetch position). Nothing here asks the broker; it costs a few
dictionary lookups per batch.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Gauge

_EVERY_S = 5.0


class ConsumerLag:
    """Keeps one group's lag gauge up to date."""

    def __init__(self, gauge: Gauge, group: str) -> None:
        self._gauge = gauge
        self._group = group
        self._all_at = 0.0

    def observe(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Any]]) -> None:
        """After a fetch (``batches`` may be empty): update the partitions that moved, and now
        and then every assigned one."""
        positions: dict[TopicPartition, int | None] = {}
        now = time.monotonic()
        if now - self._all_at >= _EVERY_S:
            self._all_at = now
            positions = {tp: _fetch_position(consumer, tp) for tp in consumer.assignment()}
        positions.update({tp: records[-1].offset + 1 for tp, records in batches.items()})
        for tp, position in positions.items():
            high = consumer.highwater(tp)
            if high is not None and position is not None:
                self._gauge.labels(self._group, tp.topic, str(tp.partition)).set(max(high - position, 0))


def _fetch_position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """The next offset the consumer will fetch, if known locally (``position()`` may wait on the
    broker; this never does)."""
    try:
        state = consumer._subscription.subscription.assignment.state_value(tp)
        return state.position if state is not None and state.has_valid_position else None
    except AttributeError:  # no assignment right now
        return None
