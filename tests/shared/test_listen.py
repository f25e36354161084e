"""The LISTEN-and-reconnect loop (shared.db.listen) against the real PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.db.listen import listen
from shared.wiring import cancel

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def test_notices_arrive_and_a_cut_connection_comes_back(new_database) -> None:
    dsn = await new_database("listen")
    got: asyncio.Queue[str] = asyncio.Queue()
    connected: asyncio.Queue[None] = asyncio.Queue()
    task = asyncio.create_task(
        listen(dsn, "things", got.put_nowait, on_connect=lambda: connected.put_nowait(None), retry_s=0.1)
    )
    admin = await asyncpg.connect(dsn)
    try:
        await asyncio.wait_for(connected.get(), 10)
        await admin.execute("NOTIFY things, 'one'")
        assert await asyncio.wait_for(got.get(), 10) == "one"
        # Cut the listening connection from the server side: the loop notices (no polling) and
        # listens again, and says so, so the caller can catch up.
        cut = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
        assert cut == 1
        await asyncio.wait_for(connected.get(), 10)
        await admin.execute("NOTIFY things, 'two'")
        assert await asyncio.wait_for(got.get(), 10) == "two"
    finally:
        await cancel(task)
        await admin.close()
    assert task.cancelled()
