"""Per-service settings, validated at start.

Every service subclasses :class:`ServiceSettings` (or :class:`BaseServiceSettings` when it has no
database or broker) and sets its own ``env_prefix`` (``BALANCE_``, ``ORDER_``, ...).

``<PREFIX>_ENVIRONMENT`` is ``development`` (the default: the local runner, a laptop), ``test`` or
``production``. Outside development nothing falls back silently: a setting listed in a class's
``required_outside_development`` must come from the environment (a mistyped ``ORDER_DATABSE_URL``
would otherwise leave ``ORDER_DATABASE_URL`` at its 127.0.0.1 default), and the service refuses
to start without it. Development keeps the defaults that point at ``deploy/infra.sh``.
"""

from __future__ import annotations

import os
import socket
from typing import ClassVar, Literal

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

    required_outside_development: ClassVar[tuple[str, ...]] = ()
    """Fields that must be set explicitly (environment or arguments) unless in development."""

    @property
    def development(self) -> bool:
        return self.environment == "development"

    def env_name(self, field: str) -> str:
        """The environment variable of ``field`` (``ORDER_DATABASE_URL``), for error messages."""
        return f"{self.model_config.get('env_prefix', '')}{field}".upper()

    @model_validator(mode="after")
    def _explicit_outside_development(self) -> BaseServiceSettings:
        if self.development:
            return self
        missing = [self.env_name(f) for f in self.required_outside_development if f not in self.model_fields_set]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} must be set when {self.env_name('environment')}={self.environment}"
                " (the 127.0.0.1 defaults are for development only)"
            )
        return self


class ServiceSettings(BaseServiceSettings):
    """A service with its own PostgreSQL database and a Kafka connection."""

    required_outside_development: ClassVar[tuple[str, ...]] = ("database_url", "kafka_bootstrap")

    database_url: str = Field(min_length=1)
    # None: migrate at start in development and test (deploy/run.sh, the tests); outside them a
    # migrations Job (python -m <package> migrate, with the schema owner's credentials) applies
    # them and the service only checks that its database has every migration it ships.
    migrate_on_start: bool | None = None
    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    kafka_bootstrap: str = "127.0.0.1:59092"
    kafka_topic_prefix: str = ""
    # TLS / SASL towards the broker (shared.messaging.security builds aiokafka's arguments from these)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    # Topics: outside development they are created by a separate step (deploy/k8s topics Job,
    # compose's kafka-init, deploy/infra.sh) with the replication and configs of production; a
    # service then only checks they exist. In development it creates the missing ones itself.
    kafka_create_topics: bool | None = None
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
    dead_letter_retention_hours: float = Field(default=720.0, gt=0)
    """How long a dead letter is kept once it was replayed (30 days); one never replayed stays."""
    retention_interval_s: float = Field(default=300.0, gt=0)
    # how often the gauges that need a query (outbox backlog, sagas by step) are refreshed
    metrics_refresh_interval_s: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _pool_bounds(self) -> ServiceSettings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError("db_pool_min must not exceed db_pool_max")
        if not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("database_url must be a postgresql:// URL")
        if self.kafka_security_protocol.startswith("SASL_") and not self.kafka_sasl_username:
            raise ValueError(f"{self.env_name('kafka_sasl_username')} is required with {self.kafka_security_protocol}")
        return self

    @property
    def migrates_on_start(self) -> bool:
        """Apply migrations at start (development, test) or only check the schema version."""
        return self.environment != "production" if self.migrate_on_start is None else self.migrate_on_start

    @property
    def creates_topics(self) -> bool:
        """Create missing topics at start (development, test) or only check they exist."""
        return self.environment != "production" if self.kafka_create_topics is None else self.kafka_create_topics
