"""The services' asyncpg pool: connections are reset on release only when an operation left them suspect."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.db.pool import close_pool, create_pool

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def _queries(conn: asyncpg.Connection) -> int:
    """Round trips the connection has made (asyncpg counts them in its protocol)."""
    raw = getattr(conn, "_con", None) or conn
    return raw._protocol.queries_count


async def _one_connection_pool(new_database, name: str) -> asyncpg.Pool:
    return await create_pool(await new_database(name), 1, 1)


async def test_release_rolls_back_an_open_transaction(new_database) -> None:
    """An unfinished transaction is rolled back when its connection goes back to the pool."""
    pool = await _one_connection_pool(new_database, "pool_rollback")
    try:
        await pool.execute("CREATE TABLE t (x int)")
        conn = await pool.acquire()
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO t VALUES (1)")
        await pool.release(conn)
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT count(*) FROM t") == 0
    finally:
        await close_pool(pool)


async def test_a_sound_connection_goes_back_without_a_round_trip(new_database) -> None:
    """Successful queries, and errors the server reported at ERROR severity, cost no reset query."""
    pool = await _one_connection_pool(new_database, "pool_sound")
    try:
        await pool.execute("CREATE TABLE t (x int PRIMARY KEY)")
        async with pool.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await conn.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(asyncpg.RaiseError):
                await conn.execute("DO $$ BEGIN RAISE EXCEPTION 'refused'; END $$")
            async with conn.transaction():
                await conn.execute("INSERT INTO t VALUES (2)")
            before = _queries(conn)
            raw = conn._con
        async with pool.acquire() as conn:
            assert conn._con is raw
            assert _queries(conn) == before, "the release ran a query on a sound connection"
            assert await conn.fetchval("SELECT pg_backend_pid()") == pid
    finally:
        await close_pool(pool)


async def test_a_cancelled_query_makes_the_release_reset_the_connection(new_database) -> None:
    pool = await _one_connection_pool(new_database, "pool_cancelled")
    try:
        async with pool.acquire() as conn:
            before = _queries(conn)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(conn.fetchval("SELECT pg_sleep(30)"), 0.2)
            raw = conn._con
        assert raw._protocol.queries_count > before + 1, "no reset after a cancelled query"
        assert not raw.suspect
        assert await pool.fetchval("SELECT 1") == 1
    finally:
        await close_pool(pool)


async def test_a_connection_whose_server_session_died_is_not_handed_out_again(new_database) -> None:
    """FATAL (the backend terminated mid-query): the next request gets a working connection."""
    dsn = await new_database("pool_fatal")
    pool = await create_pool(dsn, 1, 1)
    admin = await asyncpg.connect(dsn)
    try:
        for _ in range(3):
            async with pool.acquire() as conn:
                pid = await conn.fetchval("SELECT pg_backend_pid()")
                query = asyncio.create_task(conn.fetchval("SELECT pg_sleep(30)"))
                await asyncio.sleep(0.2)
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
                with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
                    await query
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT 41 + 1") == 42
                assert await conn.fetchval("SELECT pg_backend_pid()") != pid
    finally:
        await admin.close()
        await close_pool(pool)
