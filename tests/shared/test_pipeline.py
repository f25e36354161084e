"""The consumer pipeline (shared.messaging.pipeline): one abstract suite, run twice.

:class:`PipelineSuite` states what the pipeline guarantees; :class:`TestPipelineOnFakes` runs it
on the in-memory unit of work and inbox (tests/support/fakes.py, no IO), and
:class:`TestPipelineOnPostgres` on the real unit of work, inbox and PostgreSQL, so the fakes
cannot drift from what the database does (eventsourcing's pattern).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg
import pytest
import pytest_asyncio

from shared.context import current_request_id
from shared.db.errors import unique_violation_on
from shared.db.migrations import PLATFORM, migrate
from shared.db.pool import close_pool, create_pool
from shared.db.uow import UnitOfWork
from shared.messaging.envelope import Incoming, Message
from shared.messaging.pipeline import Pipeline, fresh, message_context, split_on_conflict
from tests.support.fakes import FakeDatabase, FakeState, FakeUnitOfWork

CONSUMER = "steps"


class Step(Message):
    event_type: ClassVar[str] = "Step"
    label: str


def incoming(label: str, offset: int = 0, message: Step | None = None) -> Incoming:
    return Incoming("steps", 0, offset, "k", message or Step(label=label), request_id=f"req-{label}")


def batch_of(*labels: str) -> list[Incoming]:
    return [incoming(label, n) for n, label in enumerate(labels)]


class Conflict(asyncpg.DeadlockDetectedError):
    """A deadlock, raised on purpose (the pipeline tells conflicts apart by their class)."""


class Raced(Exception):
    """Stands for "another transaction recorded this key after we read it"."""


@dataclass
class World:
    """What a test needs from either kind of adapter."""

    uow: Callable[[], Any]
    applied: Callable[[], Any]  # async () -> list[str], the committed labels in order
    claimed: Callable[[], Any]  # async () -> set[uuid.UUID], the committed inbox of CONSUMER
    transactions: Callable[[], int] | None = None


class PipelineSuite:
    """The contract; a subclass provides the ``world`` fixture."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_applies_each_new_message_once_in_order(self, world: World) -> None:
        pipeline = Pipeline(world.uow, CONSUMER)
        batch = batch_of("a", "b", "c")

        async def apply_one(uow: Any, item: Incoming) -> None:
            await uow.repos.add(item.message.label)

        await pipeline.apply_each([*batch, batch[1]], apply_one)  # a duplicate inside the batch
        await pipeline.apply_each(batch, apply_one)  # the batch redelivered
        assert await world.applied() == ["a", "b", "c"]
        assert await world.claimed() == {i.event_id for i in batch}

    async def test_each_message_runs_under_its_request_id(self, world: World) -> None:
        async def apply_one(uow: Any, item: Incoming) -> None:
            await uow.repos.add(f"{item.message.label}:{current_request_id()}")

        await Pipeline(world.uow, CONSUMER).each(apply_one)(batch_of("a", "b"))
        assert await world.applied() == ["a:req-a", "b:req-b"]
        assert current_request_id() is None

    async def test_a_failure_rolls_back_claims_and_effects_together(self, world: World) -> None:
        pipeline = Pipeline(world.uow, CONSUMER)
        batch = batch_of("a", "b")
        failing = True

        async def apply_one(uow: Any, item: Incoming) -> None:
            await uow.repos.add(item.message.label)
            if failing and item.message.label == "b":
                raise ValueError("bad")

        with pytest.raises(ValueError, match="bad"):
            await pipeline.apply_each(batch, apply_one)
        assert await world.applied() == []
        assert await world.claimed() == set()
        failing = False
        await pipeline.apply_each(batch, apply_one)
        assert await world.applied() == ["a", "b"]

    async def test_a_conflicted_batch_is_applied_one_message_per_transaction(self, world: World) -> None:
        calls: list[list[str]] = []

        async def apply(uow: Any, items: list[Incoming]) -> int:
            calls.append([i.message.label for i in items])
            if len(items) > 1:
                raise Conflict("deadlock detected")
            for item in items:
                await uow.repos.add(item.message.label)
            return len(items)

        results = await Pipeline(world.uow, CONSUMER).apply_batch(batch_of("a", "b", "c"), apply)
        assert calls == [["a", "b", "c"], ["a"], ["b"], ["c"]]
        assert results == [1, 1, 1]
        assert await world.applied() == ["a", "b", "c"]

    async def test_a_message_conflicting_alone_is_retried_then_raised(self, world: World) -> None:
        calls = 0

        async def apply(uow: Any, items: list[Incoming]) -> None:
            nonlocal calls
            calls += 1
            raise Conflict("deadlock detected")

        with pytest.raises(asyncpg.DeadlockDetectedError):
            await Pipeline(world.uow, CONSUMER, attempts=3).apply_batch(batch_of("a", "b"), apply)
        assert calls == 1 + 3  # the batch, then "a" three times; "b" never reached
        assert await world.claimed() == set()

    async def test_on_conflict_retry_runs_the_whole_batch_again(self, world: World) -> None:
        calls: list[list[str]] = []

        async def apply(uow: Any, items: list[Incoming]) -> int:
            calls.append([i.message.label for i in items])
            if len(calls) < 3:
                raise Conflict("deadlock detected")
            for item in items:
                await uow.repos.add(item.message.label)
            return len(items)

        results = await Pipeline(world.uow, CONSUMER, on_conflict="retry").apply_batch(batch_of("a", "b"), apply)
        assert calls == [["a", "b"]] * 3
        assert results == [2]
        assert await world.applied() == ["a", "b"]

    async def test_retry_if_runs_the_transaction_again_from_the_start(self, world: World) -> None:
        raced = 0

        async def apply_one(uow: Any, item: Incoming) -> None:
            nonlocal raced
            await uow.repos.add(item.message.label)
            if item.message.label == "b" and raced < 2:
                raced += 1
                raise Raced

        pipeline = Pipeline(world.uow, CONSUMER, retry_if=lambda exc: isinstance(exc, Raced))
        await pipeline.apply_each(batch_of("a", "b"), apply_one)
        assert raced == 2
        assert await world.applied() == ["a", "b"]

        async def always(uow: Any, item: Incoming) -> None:
            raise Raced

        with pytest.raises(Raced):
            await Pipeline(world.uow, "other", retry_if=lambda e: isinstance(e, Raced)).apply_each(
                batch_of("x"), always
            )

    async def test_an_error_not_named_is_not_retried(self, world: World) -> None:
        calls = 0

        async def apply(uow: Any, items: list[Incoming]) -> None:
            nonlocal calls
            calls += 1
            raise Raced

        with pytest.raises(Raced):
            await Pipeline(world.uow, CONSUMER).apply_batch(batch_of("a", "b"), apply)
        assert calls == 1

    async def test_a_whole_batch_apply_gets_the_new_messages_once(self, world: World) -> None:
        seen: list[list[str]] = []
        pipeline = Pipeline(world.uow, CONSUMER)

        async def apply(uow: Any, items: list[Incoming]) -> list[str]:
            labels = [i.message.label for i in items]
            seen.append(labels)
            for label in labels:
                await uow.repos.add(label)
            return labels

        batch = batch_of("a", "b")
        assert await pipeline.apply_batch(batch, apply) == [["a", "b"]]
        again = [*batch, batch[0], incoming("c", 3)]
        assert await pipeline.apply_batch(again, apply) == [["c"]]
        assert await pipeline.apply_batch(batch, apply) == []  # nothing new: not called
        assert seen == [["a", "b"], ["c"]]
        assert await world.applied() == ["a", "b", "c"]

    async def test_a_fused_apply_claims_the_inbox_itself(self, world: World) -> None:
        pipeline = Pipeline(world.uow, CONSUMER)
        got: list[int] = []

        async def apply(uow: Any, items: list[Incoming]) -> int:
            got.append(len(items))  # the whole batch: nothing claimed before us
            new = await uow.inbox.claim_new(pipeline.consumer, [i.event_id for i in items])
            todo = fresh(items, new)
            for item in todo:
                await uow.repos.add(item.message.label)
            return len(todo)

        batch = batch_of("a", "b")
        assert await pipeline.apply_batch([*batch, batch[1]], apply, claim=False) == [2]
        assert await pipeline.apply_batch(batch, apply, claim=False) == [0]
        assert got == [3, 2]
        assert await world.applied() == ["a", "b"]
        assert await world.claimed() == {i.event_id for i in batch}

    async def test_a_handler_for_the_consumer(self, world: World) -> None:
        async def apply(uow: Any, items: list[Incoming]) -> None:
            for item in items:
                await uow.repos.add(item.message.label)

        handle = Pipeline(world.uow, CONSUMER).whole(apply)
        a, b = batch_of("a", "b")
        await handle([a])
        await handle([a, b])
        assert await world.applied() == ["a", "b"]


# -- the in-memory adapters ------------------------------------------------------------------------


class FakeApplied:
    def __init__(self, state: FakeState) -> None:
        self._rows: list[str] = state.tables.setdefault("applied", [])

    async def add(self, label: str) -> None:
        self._rows.append(label)


class TestPipelineOnFakes(PipelineSuite):
    @pytest.fixture
    def world(self) -> World:
        db = FakeDatabase()

        async def applied() -> list[str]:
            return list(db.state.tables.get("applied", []))

        async def claimed() -> set[uuid.UUID]:
            return db.claimed(CONSUMER)

        return World(lambda: FakeUnitOfWork(db, repositories=FakeApplied), applied, claimed)


# -- PostgreSQL ----------------------------------------------------------------------------------------


class PgApplied:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def add(self, label: str) -> None:
        await self._conn.execute("INSERT INTO applied (label) VALUES ($1)", label)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(new_database: Any) -> AsyncIterator[asyncpg.Pool]:
    dsn = await new_database("pipeline")
    await migrate(dsn, [PLATFORM])
    pool = await create_pool(dsn, 1, 4)
    await pool.execute("CREATE TABLE applied (seq bigserial PRIMARY KEY, label text NOT NULL)")
    yield pool
    await close_pool(pool)


class TestPipelineOnPostgres(PipelineSuite):
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio, pytest.mark.integration]

    @pytest_asyncio.fixture(loop_scope="session")
    async def world(self, pool: asyncpg.Pool) -> World:
        await pool.execute("TRUNCATE applied, inbox")

        async def applied() -> list[str]:
            return [r["label"] for r in await pool.fetch("SELECT label FROM applied ORDER BY seq")]

        async def claimed() -> set[uuid.UUID]:
            rows = await pool.fetch("SELECT message_id FROM inbox WHERE consumer = $1", CONSUMER)
            return {r["message_id"] for r in rows}

        return World(lambda: UnitOfWork(pool, repositories=PgApplied), applied, claimed)

    async def test_a_unique_violation_on_a_named_key_runs_again(self, pool: asyncpg.Pool, world: World) -> None:
        await pool.execute("CREATE TABLE IF NOT EXISTS records (id text CONSTRAINT records_pkey PRIMARY KEY)")
        await pool.execute("TRUNCATE records")
        tries = 0

        async def apply_one(uow: Any, item: Incoming) -> None:
            nonlocal tries
            tries += 1
            if tries == 1:  # another instance recorded it meanwhile
                async with pool.acquire() as other:
                    await other.execute("INSERT INTO records VALUES ($1)", item.message.label)
            exists = await uow.conn.fetchval("SELECT true FROM records WHERE id = $1", item.message.label)
            if tries == 1 or not exists:
                await uow.conn.execute("INSERT INTO records VALUES ($1)", item.message.label)
            await uow.repos.add(item.message.label)

        await Pipeline(world.uow, CONSUMER, retry_if=unique_violation_on("records_pkey")).apply_each(
            batch_of("a"), apply_one
        )
        assert tries == 2
        assert await world.applied() == ["a"]


# -- helpers outside the pipeline ------------------------------------------------------------------


def test_fresh_keeps_new_ids_in_order_once() -> None:
    a, b, c = batch_of("a", "b", "c")
    assert fresh([a, b, a, c, b], {a.event_id, b.event_id}) == [a, b]


def test_message_context_restores_the_request_id() -> None:
    with message_context(incoming("a")):
        assert current_request_id() == "req-a"
    assert current_request_id() is None


@pytest.mark.asyncio
async def test_split_on_conflict_is_kept_for_whole_batch_appliers() -> None:
    calls: list[int] = []

    async def apply(items: Any) -> None:
        calls.append(len(items))
        if len(items) > 1:
            raise Conflict("deadlock detected")

    await split_on_conflict(batch_of("a", "b"), apply)
    assert calls == [2, 1, 1]
