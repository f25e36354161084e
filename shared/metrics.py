"""Prometheus metrics: one registry per application (no process globals), exposed at ``/metrics``
(:mod:`shared.web.metrics`). No web dependency: the database and messaging layers record here."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The registry of one service and the metrics the platform records in it."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.messages_consumed = Counter(
            "messages_consumed_total",
            "Kafka messages consumed",
            ["topic", "outcome"],
            registry=self.registry,
        )
        self.consumer_batch_seconds = Histogram(
            "consumer_batch_duration_seconds",
            "Time to process one consumed batch",
            ["group"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outbox_published = Counter(
            "outbox_published_total",
            "Outbox messages published to Kafka",
            ["topic"],
            registry=self.registry,
        )
        self.outbox_failures = Counter(
            "outbox_publish_failures_total",
            "Outbox batches that failed to publish",
            registry=self.registry,
        )
        # The standard process_*, python_info and python_gc_* series, on this registry.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.dead_letters = Counter(
            "dead_letters_total",
            "Consumed records set aside as dead letters",
            ["topic", "error_kind"],
            registry=self.registry,
        )
        self.compensations_dead_lettered = Counter(
            "sagas_compensation_dead_lettered_total",
            "Saga compensation commands set aside (their saga stays COMPENSATING until a replay)",
            ["topic", "event_type"],
            registry=self.registry,
        )
        self.handler_failures = Counter(
            "consumer_handler_failures_total",
            "Failed tries of a consumer's batch handler",
            ["group", "kind"],
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "kafka_consumer_lag_records",
            "Records of a partition not yet processed by the group",
            ["group", "topic", "partition"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


__all__ = ["Metrics"]
