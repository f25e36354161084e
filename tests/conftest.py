"""Session-wide fixtures: the real servers, fresh databases, a private topic namespace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest
import pytest_asyncio

from tests.support.infra import PrivateBroker, Servers
from tests.support.infra import servers as find_servers

pytest_plugins = ["tests.support.reporting"]  # a failure pytest cannot quote is still reported

_NEEDS_SERVERS = ("integration", "e2e", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``unit`` every test that needs no server (no integration, e2e or faults marker and no
    ``infra`` fixture, however indirect): ``deploy/test.sh -m unit`` is the edit-test loop."""
    for item in items:
        for folder in ("e2e", "faults"):  # a module there that forgot its pytestmark is still one
            if f"/tests/{folder}/" in str(item.path) and not item.get_closest_marker(folder):
                item.add_marker(getattr(pytest.mark, folder))
        needs = any(item.get_closest_marker(m) for m in _NEEDS_SERVERS)
        if not needs and "infra" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def infra() -> Iterator[Servers]:
    """Real PostgreSQL and Kafka (env, testcontainers or local; see tests/support/infra.py)."""
    with find_servers() as found:
        yield found


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: Servers) -> str:
    return infra.kafka_bootstrap


@pytest.fixture(scope="session")
def topic_prefix() -> str:
    """A namespace for this run's topics and consumer groups, so runs never see each other."""
    return f"t{uuid.uuid4().hex[:10]}."


NewDatabase = Callable[[str], Awaitable[str]]


@pytest_asyncio.fixture(scope="session")
async def new_database(infra: Servers) -> AsyncIterator[NewDatabase]:
    """Create an empty database with a unique name; return its DSN. All are dropped at the end."""
    created: list[str] = []

    async def create(label: str) -> str:
        name = f"test_{label}_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(infra.pg_admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return infra.database_dsn(name)

    yield create
    conn = await asyncpg.connect(infra.pg_admin_dsn)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def private_broker(infra: Servers) -> Iterator[PrivateBroker]:
    """A broker of our own to stop and start; only where the servers are the local ones."""
    if infra.source != "local":
        pytest.skip("stopping a broker needs the local servers of deploy/infra.sh")
    broker = PrivateBroker()
    broker.start()
    yield broker
    broker.remove()
