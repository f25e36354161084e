"""Per-service settings, validated at start.

Every service subclasses :class:`ServiceSettings` (or :class:`BaseServiceSettings` when it has no
database or broker) and sets its own ``env_prefix`` (``BALANCE_``, ``ORDER_``, ...).
"""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class BaseServiceSettings(BaseSettings):
    """What every process has: where it listens, how it logs, which environment it runs in."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    environment: Environment = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = True
    instance_id: str = Field(default_factory=_default_instance_id)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)


class ServiceSettings(BaseServiceSettings):
    """A service with its own PostgreSQL database and a Kafka connection."""

    database_url: str = Field(min_length=1)
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    kafka_bootstrap: str = "127.0.0.1:59092"
    kafka_topic_prefix: str = ""
    kafka_send_timeout_s: float = Field(default=10.0, gt=0)
    # An idle consumer long-polls the broker 1000/fetch_max_wait_ms times a second, which costs CPU
    # on both sides (10 ms: ~0.35 of the 2 cores with the cluster idle). A fetch returns as soon as
    # a record arrives, so a longer wait did not slow orders down (20/s: p50 24-27 ms with 10 or
    # 100 ms; orders one at a time: 30 vs 27 ms) and freed CPU for the rest (docs/BENCHMARKS.md).
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=0)
    # projections that tolerate a little lag (user.registered, order.completed)
    kafka_projection_fetch_max_wait_ms: int = Field(default=250, ge=0)
    # 0: the relay hands a whole batch to the producer at once, so waiting for more records only
    # delays every hop (orders at 20/s: p50 45-52 -> 26 ms, p99 101-191 -> 50 ms; docs/BENCHMARKS.md)
    kafka_linger_ms: int = Field(default=0, ge=0)
    kafka_max_batch: int = Field(default=500, ge=1)
    consumer_max_attempts: int = Field(default=3, ge=1, le=100)
    """Tries of a single record that fails deterministically before it is set aside (dead letter)."""
    consumer_retry_backoff_max_s: float = Field(default=5.0, gt=0)
    """Cap of the backoff between retries of a transient handler failure (retried without limit)."""
    outbox_poll_interval_s: float = Field(default=1.0, gt=0)
    outbox_batch_size: int = Field(default=500, ge=1)
    retention_hours: float = Field(default=72.0, gt=0)
    retention_interval_s: float = Field(default=300.0, gt=0)
    # how often the gauges that need a query (outbox backlog, sagas by step) are refreshed
    metrics_refresh_interval_s: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _pool_bounds(self) -> "ServiceSettings":
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("db_pool_min must not exceed db_pool_max")
        if not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("database_url must be a postgresql:// URL")
        return self
