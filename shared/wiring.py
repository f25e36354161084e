"""``cleanup_ctx`` pieces that connect a service to Kafka: publisher, outbox relay, consumers.

Order matters: add :func:`shared.db.pool.postgres_ctx` first, then :func:`messaging_ctx`, then
each :func:`consumer_ctx`; aiohttp tears them down in reverse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from datetime import timedelta
from typing import Any

from aiohttp import web

from shared.config import ServiceSettings
from shared.db.dead_letters import DeadLetterHook, DeadLetterStore
from shared.db.gauges import Probe, outbox_probe, run_probes
from shared.db.outbox import OutboxRelay, SentHook
from shared.db.pool import PG_POOL
from shared.db.retention import INBOX, REPLAYED_DEAD_LETTERS, RetentionRule, run_retention
from shared.messaging import topics as topic_names
from shared.messaging.admin import ensure_topics
from shared.messaging.consumer import BatchConsumer, BatchHandler
from shared.messaging.envelope import MessageRegistry
from shared.messaging.producer import KafkaPublisher
from shared.messaging.security import kafka_security
from shared.messaging.topics import Topics
from shared.web.app import HEALTH, METRICS

log = logging.getLogger(__name__)

PUBLISHER = web.AppKey("publisher", KafkaPublisher)
RELAY = web.AppKey("outbox_relay", OutboxRelay)
TOPICS = web.AppKey("topics", Topics)
CONSUMERS = web.AppKey("consumers", list)
PROBES = web.AppKey("metric_probes", list)
"""Probes (``shared.db.gauges.Probe``) refreshed every ``metrics_refresh_interval_s``; a service
may append its own (``order_service``: sagas by step) while it starts."""
DEAD_LETTERS = web.AppKey("dead_letters", DeadLetterStore)
REPLAYS = web.AppKey("dead_letter_replays", set)
"""Replays of dead letters in progress (cancelled on shutdown; a replay not finished is not
marked replayed, so it can be asked for again)."""

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


CANCEL_GRACE_S = 15.0
"""How long shutdown waits for a cancelled background task to end."""


async def cancel(task: asyncio.Task[Any], grace_s: float = CANCEL_GRACE_S) -> None:
    """Cancel a background task and wait for it to end, at most ``grace_s``: a task that has not
    ended by then (a Kafka client stuck in a rebalance, say) is left behind with a warning, so that
    shutdown always completes (the pool and the producer still close after it). An exception the
    task ended with is raised here, as before."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=grace_s)
    if not done:
        log.warning(
            "background task did not stop in time; shutting down without it",
            extra={"task": task.get_name(), "grace_s": grace_s},
        )
        return
    with contextlib.suppress(asyncio.CancelledError):
        await task


def background(name: str, start: Callable[[web.Application], Coroutine[Any, Any, None]]) -> CleanupCtx:
    """A task that runs for the life of the app and is cancelled on shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(start(app), name=name)
        yield
        await cancel(task)

    return ctx


def messaging_ctx(
    settings: ServiceSettings,
    *,
    topics: Iterable[str] = topic_names.ALL,
    retention: Iterable[RetentionRule | tuple[RetentionRule, timedelta]] = (),
    on_sent: SentHook | None = None,
) -> CleanupCtx:
    """Publisher and outbox relay as ``app[PUBLISHER]`` / ``app[RELAY]``; topics checked at start
    (created when missing only in development and test: ``shared.messaging.admin``).

    ``on_sent``: the relay's hook on each acknowledged batch (see :class:`OutboxRelay`).

    A retention job purges inbox rows (and any extra ``retention`` rules, each with its own window
    when given as ``(rule, window)``, such as the order service's saga history) older than
    ``settings.retention_hours``, and dead letters replayed more than
    ``settings.dead_letter_retention_hours`` ago (never one that was not replayed).
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        names = Topics(settings.kafka_topic_prefix)
        app[TOPICS] = names
        app[DEAD_LETTERS] = DeadLetterStore(app[PG_POOL], app[HEALTH].service, names(topic_names.DEAD_LETTER))
        security = kafka_security(settings)
        await ensure_topics(
            settings.kafka_bootstrap, [names(t) for t in topics], create=settings.creates_topics, security=security
        )
        publisher = KafkaPublisher(
            settings.kafka_bootstrap,
            client_id=f"{app[HEALTH].service}-{settings.instance_id}",
            send_timeout_s=settings.kafka_send_timeout_s,
            linger_ms=settings.kafka_linger_ms,
            security=security,
        )
        app[PUBLISHER] = publisher
        relay = OutboxRelay(
            app[PG_POOL],
            settings.database_url,
            publisher,
            batch_size=settings.outbox_batch_size,
            poll_interval_s=settings.outbox_poll_interval_s,
            metrics=app[METRICS],
            on_sent=on_sent,
        )
        app[RELAY] = relay
        app[CONSUMERS] = []
        probes: list[Probe] = [outbox_probe(app[METRICS].registry)]
        app[PROBES] = probes
        app[REPLAYS] = set()
        tasks = [
            asyncio.create_task(relay.run(), name="outbox-relay"),
            asyncio.create_task(
                run_retention(
                    app[PG_POOL],
                    [
                        INBOX,
                        (REPLAYED_DEAD_LETTERS, timedelta(hours=settings.dead_letter_retention_hours)),
                        *retention,
                    ],
                    timedelta(hours=settings.retention_hours),
                    settings.retention_interval_s,
                ),
                name="retention",
            ),
            asyncio.create_task(
                run_probes(app[PG_POOL], probes, app[METRICS].registry, settings.metrics_refresh_interval_s),
                name="metric-probes",
            ),
        ]
        yield
        replays: set[asyncio.Task[None]] = app[REPLAYS]
        for replay in list(replays):
            await cancel(replay)
        for task in reversed(tasks):
            await cancel(task)
        await publisher.close()

    return ctx


def consumer_ctx(
    settings: ServiceSettings,
    *,
    group: str,
    topics: Iterable[str],
    registry: MessageRegistry,
    handler: Callable[[web.Application], BatchHandler],
    projection: bool = False,
    hook: Callable[[web.Application], DeadLetterHook] | None = None,
) -> CleanupCtx:
    """A :class:`BatchConsumer` for the app's lifetime; ``handler(app)`` builds its batch handler.

    Records it cannot process are set aside in the service's dead-letter store; ``hook(app)``, if
    given, runs in the same transaction (a saga participant answers a forward command there).

    ``projection=True`` (a read model that may lag a little, not a saga step) long-polls with
    ``kafka_projection_fetch_max_wait_ms`` instead of ``kafka_fetch_max_wait_ms``.
    """
    wait_ms = settings.kafka_projection_fetch_max_wait_ms if projection else settings.kafka_fetch_max_wait_ms

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        names = app[TOPICS]
        consumer = BatchConsumer(
            bootstrap=settings.kafka_bootstrap,
            group_id=names(group),
            topics=[names(t) for t in topics],
            handler=handler(app),
            registry=registry,
            dead_letters=app[DEAD_LETTERS],
            hook=hook(app) if hook is not None else None,
            max_attempts=settings.consumer_max_attempts,
            retry_backoff_max_s=settings.consumer_retry_backoff_max_s,
            metrics=app[METRICS],
            fetch_max_wait_ms=wait_ms,
            max_records=settings.kafka_max_batch,
            client_id=f"{group}-{settings.instance_id}",
            security=kafka_security(settings),
        )
        app[CONSUMERS].append(consumer)
        task = asyncio.create_task(consumer.run(), name=f"consumer-{group}")
        yield
        await cancel(task)

    return ctx
