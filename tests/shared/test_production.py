"""Running outside development: explicit settings, the schema version check, the topics step,
Kafka TLS/SASL settings (real PostgreSQL and Kafka where a server is involved)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import ValidationError

from balance_service.app import MIGRATIONS, create_app
from balance_service.config import Settings as BalanceSettings
from order_service.config import Settings as OrderSettings
from shared.db.migrations import MigrationSource, SchemaBehind, check_schema, migrate
from shared.messaging import admin
from shared.messaging.admin import TopicError, TopicSpec, ensure_topics, provision_topics
from shared.messaging.consumer import BatchConsumer
from shared.messaging.security import kafka_security, security_kwargs

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------- settings


def test_outside_development_the_dsn_and_broker_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("ORDER_"):
            monkeypatch.delenv(key)
    assert OrderSettings().database_url.startswith("postgresql://")  # development: infra.sh's defaults
    monkeypatch.setenv("ORDER_ENVIRONMENT", "production")
    monkeypatch.setenv("ORDER_KAFKA_BOOTSTRAP", "kafka:9092")
    monkeypatch.setenv("ORDER_DATABSE_URL", "postgresql://u:p@db:5432/orders")  # mistyped
    with pytest.raises(ValidationError, match="ORDER_DATABASE_URL must be set"):
        OrderSettings()
    monkeypatch.setenv("ORDER_DATABASE_URL", "postgresql://u:p@db:5432/orders")
    monkeypatch.delenv("ORDER_KAFKA_BOOTSTRAP")
    with pytest.raises(ValidationError, match="ORDER_KAFKA_BOOTSTRAP must be set"):
        OrderSettings()
    monkeypatch.setenv("ORDER_KAFKA_BOOTSTRAP", "kafka:9092")
    settings = OrderSettings()
    assert not settings.migrates_on_start and not settings.creates_topics


def _start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "BALANCE_"))}
    return subprocess.run(
        [sys.executable, "-m", module],
        env=clean | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_service_refuses_to_start_in_production_without_its_settings() -> None:
    gateway = _start(
        "gateway",
        {"GATEWAY_ENVIRONMENT": "production", "GATEWAY_PORT": "0", "GATEWAY_ADMIN_TOKEN": "change-me-admin-token"},
    )
    assert gateway.returncode != 0
    assert "refusing to start" in gateway.stderr and "placeholder" in gateway.stderr
    assert "Traceback" not in gateway.stderr
    balance = _start("balance_service", {"BALANCE_ENVIRONMENT": "production", "BALANCE_PORT": "0"})
    assert balance.returncode != 0
    assert "BALANCE_DATABASE_URL, BALANCE_KAFKA_BOOTSTRAP must be set" in balance.stderr


# ----------------------------------------------------------------------------- migrations


@pytest.mark.integration
@pytest.mark.asyncio
async def test_a_service_refuses_an_older_schema(new_database, kafka_bootstrap: str, tmp_path: Path) -> None:
    dsn = await new_database("schema")
    settings = BalanceSettings(
        environment="production", database_url=dsn, kafka_bootstrap=kafka_bootstrap, port=0, access_log=False
    )
    server = TestServer(create_app(settings))
    with pytest.raises(SchemaBehind, match="balance/0001"):
        await server.start_server()  # no migrations applied: it does not serve (nor migrate)
    await server.close()
    conn = await asyncpg.connect(dsn)
    try:
        assert not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    finally:
        await conn.close()
    # the migrations Job's command, with the schema owner's DSN
    job = subprocess.run(
        [sys.executable, "-m", "balance_service", "migrate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ
        | {
            "BALANCE_ENVIRONMENT": "production",
            "BALANCE_DATABASE_URL": dsn,
            "BALANCE_KAFKA_BOOTSTRAP": kafka_bootstrap,
        },
    )
    assert job.returncode == 0, job.stderr
    await check_schema(dsn, MIGRATIONS)
    # one migration behind the files a (newer) release ships is refused too
    newer = tmp_path / "migrations"
    newer.mkdir()
    for path in MIGRATIONS[1].files():
        (newer / path.name).write_text(path.read_text())
    (newer / "0999_next.sql").write_text("CREATE TABLE next_thing (id int);")
    release = [MIGRATIONS[0], MigrationSource("balance", newer)]
    with pytest.raises(SchemaBehind, match=r"balance/0999_next\.sql"):
        await check_schema(dsn, release)
    assert await migrate(dsn, release) == ["balance/0999_next.sql"]
    await check_schema(dsn, release)
    await check_schema(dsn, MIGRATIONS)  # an older release on a newer schema (rolling update) is fine


# --------------------------------------------------------------------------------- topics


async def _partitions(bootstrap: str, topic: str) -> int:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await client.start()
    try:
        return len((await client.describe_topics([topic]))[0]["partitions"])
    finally:
        await client.close()


@pytest.mark.integration
@pytest.mark.asyncio
async def test_the_topics_step_applies_its_settings_and_services_do_not_override_them(kafka_bootstrap: str) -> None:
    prefix = f"prov{uuid.uuid4().hex[:8]}."
    names = [f"{prefix}a", f"{prefix}b"]
    spec = TopicSpec(
        partitions=3, replication_factor=1, configs={"min.insync.replicas": "1", "retention.ms": "3600000"}
    )
    state = await provision_topics(kafka_bootstrap, names, spec)
    for name in names:
        assert state[name]["partitions"] == 3 and state[name]["replication_factor"] == 1
        assert state[name]["configs"] == {"min.insync.replicas": "1", "retention.ms": "3600000"}

    # a service starting in development creates only what is missing, never changes what exists
    extra = f"{prefix}c"
    assert await ensure_topics(kafka_bootstrap, [*names, extra], partitions=8, create=True)
    assert await _partitions(kafka_bootstrap, names[0]) == 3
    assert await _partitions(kafka_bootstrap, extra) == 8
    # outside development it only checks: a missing topic is reported, not created
    missing = f"{prefix}missing"
    assert not await ensure_topics(kafka_bootstrap, [*names, missing], create=False)
    assert await ensure_topics(kafka_bootstrap, names, create=False)
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    try:
        assert missing not in await client.list_topics()
        again = await admin.describe(client, names, spec.configs)
    finally:
        await client.close()
    assert all(again[n]["configs"] == dict(spec.configs) for n in names)

    # running the step again puts its configs back; a replication it cannot change is an error
    changed = TopicSpec(
        partitions=3, replication_factor=1, configs={"min.insync.replicas": "1", "retention.ms": "7200000"}
    )
    assert (await provision_topics(kafka_bootstrap, names, changed))[names[0]]["configs"]["retention.ms"] == "7200000"
    with pytest.raises(TopicError, match="replication factor 1"):
        await provision_topics(kafka_bootstrap, names, TopicSpec(partitions=3, replication_factor=2))


class LaggingMetadataAdmin:
    """An admin client whose broker has not yet learnt of the topics it was just asked to create:
    its first metadata answers list them without partitions (seen on the real broker, once)."""

    def __init__(self, lagging_answers: int) -> None:
        self.created: list[str] = []
        self.lagging = lagging_answers

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return []

    async def create_topics(self, topics: list[object], timeout_ms: int) -> object:
        self.created = [t.name for t in topics]  # type: ignore[attr-defined]
        return None

    async def describe_topics(self, names: list[str]) -> list[dict[str, object]]:
        self.lagging -= 1
        parts = [] if self.lagging >= 0 else [{"partition": i, "replicas": [1]} for i in range(3)]
        return [{"topic": n, "error_code": 3 if not parts else 0, "partitions": parts} for n in names]

    async def describe_configs(self, resources: list[object]) -> list[object]:
        return []


@pytest.mark.asyncio
async def test_the_topics_step_waits_for_the_metadata_of_the_topics_it_created(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = LaggingMetadataAdmin(lagging_answers=2)
    monkeypatch.setattr(admin, "_admin", lambda *args: fake)
    state = await provision_topics("broker:9092", ["p.a", "p.b"], TopicSpec(partitions=3, replication_factor=1))
    assert fake.created == ["p.a", "p.b"]
    assert all(state[n]["partitions"] == 3 and state[n]["replication_factor"] == 1 for n in ("p.a", "p.b"))


@pytest.mark.asyncio
async def test_the_topics_step_still_refuses_topics_that_stay_without_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(admin, "_admin", lambda *args: LaggingMetadataAdmin(lagging_answers=10**6))
    with pytest.raises(TopicError, match="0 partitions"):
        await provision_topics("broker:9092", ["p.a"], TopicSpec(partitions=3), timeout_s=0.5)


@pytest.mark.integration
def test_the_topics_command(kafka_bootstrap: str) -> None:
    prefix = f"cmd{uuid.uuid4().hex[:8]}."
    env = {
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_TOPICS": "x y",
        "KAFKA_PARTITIONS": "2",
        "KAFKA_REPLICATION_FACTOR": "1",
        "KAFKA_MIN_INSYNC_REPLICAS": "1",
        "KAFKA_RETENTION_MS": "86400000",
    }
    done = subprocess.run(
        [sys.executable, "-m", "shared.messaging.admin"],
        env=os.environ | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"{prefix}x partitions=2 replication=1" in done.stdout
    assert "'retention.ms': '86400000'" in done.stdout
    wrong = subprocess.run(
        [sys.executable, "-m", "shared.messaging.admin"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=os.environ | env | {"KAFKA_REPLICATION_FACTOR": "3"},
    )
    assert wrong.returncode == 1 and "topics not provisioned" in wrong.stderr


# ------------------------------------------------------------------------------- security


def test_kafka_security_settings_reach_every_client() -> None:
    assert security_kwargs() == {}
    sasl = security_kwargs("SASL_SSL", sasl_mechanism="SCRAM-SHA-512", username="svc", password="pw")
    assert sasl["security_protocol"] == "SASL_SSL" and sasl["ssl_context"] is not None
    assert (sasl["sasl_mechanism"], sasl["sasl_plain_username"], sasl["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "svc",
        "pw",
    )
    settings = BalanceSettings(
        database_url="postgresql://x@db/balance",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",
    )
    kwargs = kafka_security(settings)
    assert kwargs == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "pw",
    }
    with pytest.raises(ValidationError, match="KAFKA_SASL_USERNAME"):
        BalanceSettings(database_url="postgresql://x@db/balance", kafka_security_protocol="SASL_SSL")


@pytest.mark.asyncio
async def test_producer_consumer_and_admin_take_the_security_settings() -> None:
    """aiokafka validates the combination in its constructors; the shared consumer passes them on."""
    sasl = security_kwargs("SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", username="u", password="p")
    producer = AIOKafkaProducer(bootstrap_servers="kafka:9092", **sasl)
    consumer = BatchConsumer(
        bootstrap="kafka:9092",
        group_id="g",
        topics=["t"],
        handler=None,  # type: ignore[arg-type]
        registry=None,
        security=sasl,
    )._make_consumer()  # type: ignore[arg-type]
    client = AIOKafkaAdminClient(bootstrap_servers="kafka:9092", **security_kwargs("SSL"))
    assert producer.client._security_protocol == "SASL_PLAINTEXT"
    assert consumer._client._security_protocol == "SASL_PLAINTEXT"
    assert consumer._client._sasl_mechanism == "SCRAM-SHA-256"
    assert client._client._security_protocol == "SSL"
    await client.close()
    await consumer.stop()
    await producer.stop()
