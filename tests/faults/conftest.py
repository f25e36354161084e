"""A private cluster for the fault suite: two instances of every service on a PRIVATE PostgreSQL
and a PRIVATE Kafka broker (stopping them never disturbs anyone else's runs), started once."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import pytest_asyncio

from bench.load import Api
from tests.faults.harness import CLUSTER, ROOT, FaultCluster, Row, table
from tests.support.infra import PrivateBroker, PrivatePostgres, Servers, cluster_port_offset, drop_databases

# Every port this suite stops and starts again lies below the ephemeral range (32768-60999 on Linux):
# while a server is down its clients keep reconnecting, and a connect to a free port inside that range
# can be given the very same port as its source (a TCP self-connect), which then holds the port and
# the restarted server fails with "Address already in use". Free ones, chosen per run (free_port_pair):
# two runs on one machine (two checkouts, say) then never stop each other's servers.
PG_PORT = int(os.environ.get("FAULTS_PG_PORT", "0")) or None
KAFKA_PORT = int(os.environ.get("FAULTS_KAFKA_PORT", "0")) or None  # controller: +1
# Short saga deadlines so a frozen participant outlives them within seconds (order_service/config.py).
SAGA_ENV = {
    "ORDER_SAGA_STEP_TIMEOUT_S": "2",
    "ORDER_SAGA_MAX_ATTEMPTS": "2",
    "ORDER_SAGA_BACKOFF_CAP_S": "4",
}
ROWS: list[Row] = []


@pytest.fixture(scope="package")
def private_pg(infra: Servers) -> Iterator[PrivatePostgres]:
    if infra.source != "local":
        pytest.skip("the fault suite stops its own PostgreSQL and Kafka: it needs deploy/infra.sh's local servers")
    pg = PrivatePostgres(PG_PORT)
    pg.start()
    yield pg
    pg.remove()


@pytest.fixture(scope="package")
def faults_broker(infra: Servers) -> Iterator[PrivateBroker]:
    if infra.source != "local":
        pytest.skip("the fault suite stops its own PostgreSQL and Kafka: it needs deploy/infra.sh's local servers")
    broker = PrivateBroker(KAFKA_PORT)
    broker.start()
    yield broker
    broker.remove()


@pytest.fixture(scope="package")
def fault_cluster(private_pg: PrivatePostgres, faults_broker: PrivateBroker) -> Iterator[FaultCluster]:
    run_id = uuid.uuid4().hex[:8]
    state_dir = ROOT / ".local" / f"faults-{run_id}"
    suffix = f"f{run_id}"
    args = [
        "up",
        "--detach",
        "--no-seed",
        "--instances",
        "balance=2,catalog=2,coupon=2,order=2,ranking=2",
        "--topic-prefix",
        f"faults{run_id}.",
        "--db-suffix",
        suffix,
        "--pg-admin-dsn",
        private_pg.admin_dsn,
        "--kafka-bootstrap",
        faults_broker.bootstrap,
        "--wait",
        "120",
        *(f"--env={k}={v}" for k, v in SAGA_ENV.items()),
    ]
    result = None
    for _ in range(3):  # a random port range; another one if it is taken
        offset = cluster_port_offset(instances=2)
        result = subprocess.run(
            [sys.executable, str(CLUSTER), "--state-dir", str(state_dir), *args, "--port-offset", str(offset)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        if result.returncode == 0:
            break
    info = json.loads((state_dir / "cluster.json").read_text()) if (state_dir / "cluster.json").exists() else {}
    try:
        assert result is not None and result.returncode == 0, (
            f"cluster did not start:\n{result.stdout}\n{result.stderr}"
        )
        yield FaultCluster(
            state_dir, info["gateway_url"], info["admin_token"], info["topic_prefix"], info["kafka_bootstrap"]
        )
    finally:
        subprocess.run(
            [sys.executable, str(CLUSTER), "--state-dir", str(state_dir), "down"],
            capture_output=True,
            timeout=180,
            cwd=ROOT,
        )
        if info:
            asyncio.run(drop_databases(private_pg.admin_dsn, suffix))
        if not os.environ.get("FAULTS_KEEP_LOGS"):
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest_asyncio.fixture(scope="package")
async def fault_api(fault_cluster: FaultCluster) -> AsyncIterator[Api]:
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield Api(session, fault_cluster.gateway, fault_cluster.admin_token)


@pytest.fixture(scope="package")
def rows() -> list[Row]:
    return ROWS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ROWS:
        terminalreporter.section("fault suite")
        terminalreporter.write_line(table(ROWS))
