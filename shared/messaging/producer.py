"""An idempotent aiokafka producer whose every send is bounded by a timeout.

aiokafka can wait forever on a send while the broker is down (its issue #1101). Every batch is
bounded; after a timeout or error the producer is thrown away and a new one is made on the
next send, so a wedged client never outlives an outage. The producer starts lazily: a service
comes up, and keeps answering, while Kafka is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from shared import tracing
from shared.messaging.envelope import Outgoing

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """A batch could not be confirmed by the broker in time."""


class KafkaPublisher:
    """Sends batches of :class:`Outgoing` messages, waiting for every acknowledgement."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        send_timeout_s: float = 10.0,
        linger_ms: int = 0,
        security: Mapping[str, Any] | None = None,
    ) -> None:
        self._bootstrap = bootstrap
        self._security = dict(security or {})
        self._client_id = client_id
        self._timeout = send_timeout_s
        self._linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap,
                    client_id=self._client_id,
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=self._linger_ms,
                    request_timeout_ms=int(self._timeout * 1000),
                    max_batch_size=256 * 1024,
                    **self._security,
                )
                try:
                    await asyncio.wait_for(producer.start(), self._timeout)
                except BaseException:
                    await self._discard(producer)
                    raise
                self._producer = producer
            return self._producer

    @staticmethod
    async def _discard(producer: AIOKafkaProducer) -> None:
        try:
            await asyncio.wait_for(producer.stop(), 2.0)
        except BaseException as exc:
            log.warning("producer did not stop cleanly", extra={"error": repr(exc)})

    async def _reset(self) -> None:
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await self._discard(producer)

    async def send_many(self, messages: Sequence[Outgoing]) -> None:
        """Send ``messages`` (in order per partition) and wait until the broker has them all."""
        await self.send_raw(
            [
                (out.topic, out.key.encode(), out.value(), [(k, v.encode()) for k, v in out.headers().items()])
                for out in messages
            ]
        )

    async def send_raw(
        self, records: Sequence[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]]
    ) -> None:
        """Send encoded ``(topic, key, value, headers)`` records; raise :class:`PublishError` on failure."""
        if not records:
            return
        try:
            async with asyncio.timeout(self._timeout):
                producer = await self._ensure()
                if tracing.ENABLED:
                    futures = await _send_traced(producer, records)
                else:
                    futures = [
                        await producer.send(topic, value, key=key, headers=headers)
                        for topic, key, value, headers in records
                    ]
                await asyncio.gather(*futures)
        except (TimeoutError, KafkaError, OSError) as exc:
            await self._reset()
            raise PublishError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._reset()


async def _send_traced(
    producer: AIOKafkaProducer, records: Sequence[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]]
) -> list[Any]:
    """Each record sent under the trace context stored in its headers (``shared.tracing.sending``)."""
    futures = []
    for topic, key, value, stored in records:
        headers = list(stored)
        with tracing.sending(headers):
            futures.append(await producer.send(topic, value, key=key, headers=headers))
    return futures
