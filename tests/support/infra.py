"""Finding real PostgreSQL and Kafka servers for the tests, in this order:

1. ``TEST_PG_DSN`` (an admin DSN; each test database is created from it) and
   ``TEST_KAFKA_BOOTSTRAP``, when both are set;
2. testcontainers, when a Docker engine answers;
3. the local servers of ``deploy/infra.sh`` (started here if they are not running).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "deploy" / "infra.sh"


@dataclass(frozen=True)
class Servers:
    pg_admin_dsn: str
    kafka_bootstrap: str
    source: str  # "env", "testcontainers" or "local"

    def database_dsn(self, name: str) -> str:
        base, _, _ = self.pg_admin_dsn.rpartition("/")
        return f"{base}/{name}"


def _docker_answers() -> bool:
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            import docker

            client = docker.from_env(timeout=3)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except Exception:
            return False


@contextlib.contextmanager
def _testcontainers() -> Iterator[Servers]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    pg = PostgresContainer("postgres:15", username="postgres", password="postgres", dbname="postgres")
    kafka = (
        KafkaContainer("confluentinc/cp-kafka:7.9.0")
        .with_kraft()
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .with_env("KAFKA_NUM_PARTITIONS", "8")
    )
    with pg, kafka:
        dsn = pg.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
        yield Servers(dsn, kafka.get_bootstrap_server(), "testcontainers")


def _local() -> Servers:
    result = subprocess.run([str(INFRA), "up"], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"deploy/infra.sh up failed:\n{result.stdout}\n{result.stderr}")
    env = subprocess.run([str(INFRA), "env"], capture_output=True, text=True, check=True).stdout
    values = dict(line.removeprefix("export ").split("=", 1) for line in env.splitlines() if line.startswith("export "))
    return Servers(values["PG_ADMIN_DSN"], values["KAFKA_BOOTSTRAP"], "local")


@contextlib.contextmanager
def servers() -> Iterator[Servers]:
    """The servers to test against, for the whole session."""
    dsn, bootstrap = os.environ.get("TEST_PG_DSN"), os.environ.get("TEST_KAFKA_BOOTSTRAP")
    if dsn and bootstrap:
        yield Servers(dsn, bootstrap, "env")
    elif os.environ.get("TEST_NO_DOCKER") != "1" and _docker_answers():
        with _testcontainers() as found:
            yield found
    else:
        yield _local()


def free_port_pair(low: int = 20000, high: int = 32000) -> int:
    """A port ``p`` with ``p`` and ``p + 1`` free, below Linux's ephemeral range (32768-60999), so
    a reconnecting client can never squat it while the server behind it is stopped."""
    for _ in range(200):
        port = random.randrange(low, high, 2)
        if all(_bindable(p) for p in (port, port + 1)):
            return port
    raise RuntimeError("no free port pair found")


def cluster_port_offset(instances: int = 1) -> int:
    """A ``--port-offset`` for deploy/cluster.py whose every port (base ports 8080..8085, one per
    service, plus 100 per further instance) is bindable now and below Linux's ephemeral range
    (32768-60999): a port in that range can be taken at any moment by an outgoing connection's
    local end (a Kafka or PostgreSQL client of another test), and the service then fails to bind."""
    for _ in range(200):
        offset = random.randrange(10_000, 24_000, 10)
        ports = [offset + base + 100 * i for base in range(8080, 8086) for i in range(instances)]
        if all(_bindable(p) for p in ports):
            return offset
    raise RuntimeError("no free port range found for a cluster")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class _PrivateServer:
    """A server of deploy/infra.sh run with its own port and state, for tests that stop it."""

    _env: dict[str, str]

    def _run(self, command: str) -> None:
        result = subprocess.run([str(INFRA), command], env=self._env, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            raise RuntimeError(f"infra.sh {command} failed:\n{result.stdout}\n{result.stderr}")


class PrivateBroker(_PrivateServer):
    """A second local Kafka broker that a test may stop and start (local servers only)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port_pair()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._env = {
            **os.environ,
            "LOCAL_KAFKA_PORT": str(self.port),
            "LOCAL_KAFKA_DIR": str(ROOT / ".local" / f"kafka-private-{self.port}"),
        }

    def start(self) -> None:
        self._run("start-kafka")

    def stop(self) -> None:
        self._run("stop-kafka")

    def remove(self) -> None:
        """Stop the broker and delete its state."""
        self.stop()
        shutil.rmtree(self._env["LOCAL_KAFKA_DIR"], ignore_errors=True)


class PrivatePostgres(_PrivateServer):
    """A second local PostgreSQL server that a test may stop and restart (local servers only)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port_pair()
        self.admin_dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._env = {
            **os.environ,
            "LOCAL_PG_PORT": str(self.port),
            "LOCAL_PG_DIR": str(ROOT / ".local" / f"pg-private-{self.port}"),
        }

    def start(self) -> None:
        self._run("start-pg")

    def stop(self) -> None:
        self._run("stop-pg")

    def kill(self) -> None:
        """Immediate shutdown (no checkpoint), like a crash."""
        self._run("kill-pg")

    def remove(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        shutil.rmtree(self._env["LOCAL_PG_DIR"], ignore_errors=True)


async def drop_databases(admin_dsn: str, suffix: str) -> None:
    """Drop every database named ``<name>_<suffix>`` (a private cluster's, see cluster.py --db-suffix)."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"%\\_{suffix}")
        for row in rows:
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await conn.close()
