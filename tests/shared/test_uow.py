"""UnitOfWork against real PostgreSQL: a cancellation during COMMIT stays a cancellation."""

from __future__ import annotations

import asyncio

import pytest

from shared.db.pool import close_pool, create_pool
from shared.db.uow import SingleStatement, UnitOfWork

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

# A deferred constraint trigger runs at COMMIT: it makes the COMMIT take a while, so the task can
# be cancelled in the middle of it (as at shutdown).
_SLOW_COMMIT = """
CREATE TABLE t (id int PRIMARY KEY);
CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION slow();
"""


async def test_a_cancelled_commit_raises_cancelled_not_the_failed_rollback(new_database) -> None:
    pool = await create_pool(await new_database("uow_cancel"), 1, 1)
    try:
        await pool.execute(_SLOW_COMMIT)
        committing = asyncio.Event()

        async def work() -> None:
            async with UnitOfWork(pool) as uow:
                await uow.conn.execute("INSERT INTO t VALUES (1)")
                committing.set()
                await uow.commit()

        task = asyncio.create_task(work())
        await committing.wait()
        await asyncio.sleep(0.3)  # inside the COMMIT
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the pool's one connection came back usable
        assert await asyncio.wait_for(pool.fetchval("SELECT 1"), 10) == 1
    finally:
        await close_pool(pool)


class _Repo:
    def __init__(self, conn) -> None:
        self.conn = conn


class _Bound(UnitOfWork[None]):
    def bind(self, conn) -> None:
        self.things = _Repo(conn)

    def unbind(self) -> None:
        del self.things


async def test_units_of_work_carry_repositories_built_on_their_connection(new_database) -> None:
    pool = await create_pool(await new_database("uow_repos"), 1, 2)
    try:
        async with UnitOfWork(pool, repositories=_Repo) as uow:
            assert uow.repos.conn is uow.conn
            assert uow.conn.is_in_transaction()
            assert await uow.inbox.claim_new("c", []) == set()
        with pytest.raises(RuntimeError):
            _ = uow.repos
        async with _Bound(pool) as bound:
            assert bound.things.conn is bound.conn
            assert bound.repos is None
        assert not hasattr(bound, "things")
        async with SingleStatement(pool, repositories=_Repo) as single:
            assert single.repos.conn is single.conn
            assert not single.conn.is_in_transaction()  # no BEGIN: one round trip per statement
            assert await single.conn.fetchval("SELECT 1") == 1
            await single.commit()  # nothing to do, so that one handler runs on either kind
        with pytest.raises(RuntimeError):
            _ = single.conn
    finally:
        await close_pool(pool)
