"""A consumed batch of stock commands applied at once (the consumer's handler fed ``Incoming``
directly), against the real PostgreSQL: same outcomes as one after the other, a fixed number
of statements whatever the batch size."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
import pytest_asyncio

from catalog_service.bootstrap import bootstrap
from catalog_service.messaging.consumers import apply_stock_batch
from catalog_service.service import stock as stock_step
from shared.db.pool import close_pool, create_pool
from shared.events.saga import (
    DeductStock,
    RestoreStock,
    SagaCommand,
    SagaReply,
    StockDeducted,
    StockDeductionFailed,
    StockLine,
)
from shared.messaging import topics
from shared.messaging.envelope import Incoming
from tests.catalog_service.conftest import Catalog

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def oid() -> str:
    return f"o-{uuid.uuid4().hex}"


def deduct(order: str, *lines: tuple[int, int]) -> DeductStock:
    return DeductStock(order_id=order, lines=[StockLine(product_id=p, quantity=q) for p, q in lines])


def incoming(*commands: SagaCommand) -> list[Incoming]:
    return [
        Incoming(topics.STOCK_COMMANDS, 0, offset, c.order_id, c, request_id=f"req-{offset}")
        for offset, c in enumerate(commands)
    ]


async def run(catalog: Catalog, *commands: SagaCommand, pool: asyncpg.Pool | None = None) -> list[SagaReply]:
    deps = bootstrap(catalog.settings, pool) if pool else catalog.deps
    assert deps.replies_topic == f"{catalog.settings.kafka_topic_prefix}{topics.SAGA_REPLIES}"
    return await apply_stock_batch(deps, incoming(*commands))


def kinds(replies: Sequence[SagaReply]) -> list[str]:
    return [r.code if isinstance(r, StockDeductionFailed) else type(r).__name__ for r in replies]


async def status_of(catalog: Catalog, order: str) -> str | None:
    return await catalog.pool.fetchval("SELECT status FROM order_stock WHERE order_id = $1", order)


async def test_scarce_product_goes_to_the_orders_that_fit_in_message_order(catalog: Catalog) -> None:
    pid = (await catalog.create(stock=5))["product_id"]
    quantities = [2, 4, 2, 1, 1, 3]
    orders = [oid() for _ in quantities]
    replies = await run(catalog, *(deduct(o, (pid, q)) for o, q in zip(orders, quantities, strict=True)))
    assert kinds(replies) == [
        "StockDeducted",
        "OUT_OF_STOCK",
        "StockDeducted",
        "StockDeducted",
        "OUT_OF_STOCK",
        "OUT_OF_STOCK",
    ]
    assert [r.order_id for r in replies] == orders
    assert all(r.product_id == pid for r in replies if isinstance(r, StockDeductionFailed))
    after = await catalog.get(pid)
    assert (after["stock"], after["status"]) == (0, "SOLD_OUT")
    assert [await status_of(catalog, o) for o in orders] == [
        "DEDUCTED",
        "FAILED",
        "DEDUCTED",
        "DEDUCTED",
        "FAILED",
        "FAILED",
    ]
    taken = await catalog.pool.fetch(
        "SELECT order_id, quantity FROM order_stock_lines WHERE order_id = ANY($1)", orders
    )
    assert sorted((r["order_id"], r["quantity"]) for r in taken) == sorted(
        [(orders[0], 2), (orders[2], 2), (orders[3], 1)]
    )
    # replayed later, one by one, every order gets the same answer and nothing changes
    again = await run(catalog, *(deduct(o, (pid, q)) for o, q in zip(orders, quantities, strict=True)))
    assert kinds(again) == kinds(replies) and (await catalog.get(pid))["stock"] == 0


async def test_deduct_and_its_restore_in_one_batch(catalog: Catalog) -> None:
    pid = (await catalog.create(stock=4))["product_id"]
    order, other = oid(), oid()
    # the restore puts back what the order took, once; another order then gets the stock back
    replies = await run(
        catalog,
        deduct(order, (pid, 4)),
        deduct(other, (pid, 1)),
        RestoreStock(order_id=order),
        RestoreStock(order_id=order),
        deduct(order, (pid, 4)),
        deduct(oid(), (pid, 3)),
    )
    assert kinds(replies) == [
        "StockDeducted",
        "OUT_OF_STOCK",
        "StockRestored",
        "StockRestored",
        "ALREADY_COMPENSATED",
        "StockDeducted",
    ]
    assert (await catalog.get(pid))["stock"] == 1
    assert await status_of(catalog, order) == "RESTORED" and await status_of(catalog, other) == "FAILED"
    # a later batch restoring it again changes nothing
    assert kinds(await run(catalog, RestoreStock(order_id=order))) == ["StockRestored"]
    assert (await catalog.get(pid))["stock"] == 1


async def test_restore_before_its_deduct_in_one_batch_fences_the_order(catalog: Catalog) -> None:
    pid = (await catalog.create(stock=10))["product_id"]
    order = oid()
    replies = await run(catalog, RestoreStock(order_id=order), deduct(order, (pid, 1)), deduct(oid(), (pid, 2)))
    assert kinds(replies) == ["StockRestored", "ALREADY_COMPENSATED", "StockDeducted"]
    assert (await catalog.get(pid))["stock"] == 8
    assert await status_of(catalog, order) == "FENCED"
    assert await catalog.pool.fetchval("SELECT count(*) FROM order_stock_lines WHERE order_id = $1", order) == 0


async def test_duplicates_in_one_batch_apply_once(catalog: Catalog) -> None:
    pid = (await catalog.create(stock=5))["product_id"]
    order, short = oid(), oid()
    first = deduct(order, (pid, 3))
    resent = deduct(order, (pid, 3))  # new event id, same order: replays the answer
    refused = deduct(short, (pid, 3))
    replies = await run(catalog, first, first, resent, refused, deduct(short, (pid, 3)), first)
    # the same event id twice in a batch is applied (and answered) once, by the inbox
    assert kinds(replies) == ["StockDeducted", "StockDeducted", "OUT_OF_STOCK", "OUT_OF_STOCK"]
    assert [r.command_id for r in replies[:2]] == [first.event_id, resent.event_id]
    assert (await catalog.get(pid))["stock"] == 2
    # redelivered in a later batch: nothing at all
    assert await run(catalog, first, resent, refused) == []
    assert (await catalog.get(pid))["stock"] == 2


async def test_lines_of_several_products_in_opposite_orders(catalog: Catalog) -> None:
    a = (await catalog.create(stock=6))["product_id"]
    b = (await catalog.create(stock=6))["product_id"]
    c = (await catalog.create(stock=1))["product_id"]
    replies = await run(
        catalog,
        deduct(oid(), (a, 1), (b, 2)),
        deduct(oid(), (b, 1), (a, 2)),
        deduct(oid(), (c, 1), (b, 1), (a, 1)),
        deduct(oid(), (a, 1), (c, 1)),  # c is gone: refused whole, a keeps its unit
        deduct(oid(), (b, 3), (a, 1)),  # b has 2 left: refused whole
        deduct(oid(), (a, 1), (b, 1), (a, 1)),  # a named twice counts twice
    )
    assert kinds(replies) == [
        "StockDeducted",
        "StockDeducted",
        "StockDeducted",
        "OUT_OF_STOCK",
        "OUT_OF_STOCK",
        "StockDeducted",
    ]
    assert [r.product_id for r in replies if isinstance(r, StockDeductionFailed)] == [c, b]
    assert [(await catalog.get(p))["stock"] for p in (a, b, c)] == [0, 1, 0]


async def test_discontinued_and_unknown_products_are_refused_in_a_batch(catalog: Catalog) -> None:
    a = (await catalog.create(stock=5))["product_id"]
    gone = (await catalog.create(stock=5))["product_id"]
    resp = await catalog.client.patch(f"/api/v1/admin/products/{gone}", json={"status": "DISCONTINUED"})
    assert resp.status == 200
    replies = await run(
        catalog,
        deduct(oid(), (a, 1), (gone, 1)),
        deduct(oid(), (a, 1), (2**62, 1)),
        deduct(oid(), (2**70, 1)),
        deduct(oid(), (a, 2)),
    )
    assert kinds(replies) == ["PRODUCT_NOT_SELLABLE"] * 3 + ["StockDeducted"]
    assert [r.product_id for r in replies[:3]] == [gone, 2**62, 2**70]  # type: ignore[attr-defined]
    assert (await catalog.get(a))["stock"] == 3 and (await catalog.get(gone))["stock"] == 5


async def test_a_conflicted_batch_falls_back_to_one_by_one_with_the_same_outcome(
    catalog: Catalog,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pid = (await catalog.create(stock=3))["product_id"]
    real = stock_step.apply_stock_commands
    sizes: list[int] = []

    async def conflicting(uow, commands):
        sizes.append(len(commands))
        if len(commands) > 1:
            raise asyncpg.DeadlockDetectedError("deadlock detected (test)")
        return await real(uow, commands)

    monkeypatch.setattr(stock_step, "apply_stock_commands", conflicting)
    order = oid()
    replies = await run(
        catalog, deduct(order, (pid, 2)), deduct(oid(), (pid, 2)), RestoreStock(order_id=order), deduct(oid(), (pid, 3))
    )
    assert sizes == [4, 1, 1, 1, 1]
    assert kinds(replies) == ["StockDeducted", "OUT_OF_STOCK", "StockRestored", "StockDeducted"]
    assert (await catalog.get(pid))["stock"] == 0


@pytest_asyncio.fixture
async def second_pool(catalog: Catalog) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(catalog.settings.database_url, 1, 6)
    try:
        yield pool
    finally:
        await close_pool(pool)


async def test_two_instances_batches_racing_on_overlapping_products(
    catalog: Catalog,
    second_pool: asyncpg.Pool,
) -> None:
    initial = {(await catalog.create(stock=40))["product_id"]: 40 for _ in range(4)}
    pids = list(initial)
    rng = random.Random(7)
    orders: dict[str, dict[int, int]] = {}

    def batch() -> list[SagaCommand]:
        commands: list[SagaCommand] = []
        for _ in range(rng.randint(3, 8)):
            if orders and rng.random() < 0.15:
                commands.append(RestoreStock(order_id=rng.choice(list(orders))))
                continue
            order = oid()
            chosen = rng.sample(pids, rng.randint(1, 3))  # random (so often opposite) line order
            lines = [(p, rng.randint(1, 4)) for p in chosen]
            orders[order] = dict(lines)
            commands.append(deduct(order, *lines))
        return commands

    async def instance(pool: asyncpg.Pool) -> list[SagaReply]:
        sent: list[SagaReply] = []
        for _ in range(12):
            sent += await run(catalog, *batch(), pool=pool)
        return sent

    first, second = await asyncio.gather(instance(catalog.pool), instance(second_pool))
    replies = first + second
    deducted = {r.order_id for r in replies if isinstance(r, StockDeducted)}
    assert any(isinstance(r, StockDeductionFailed) and r.code == "OUT_OF_STOCK" for r in replies)  # scarce
    rows = await catalog.pool.fetch("SELECT order_id, status FROM order_stock WHERE order_id = ANY($1)", list(orders))
    status = {r["order_id"]: r["status"] for r in rows}
    kept = {o for o, s in status.items() if s == "DEDUCTED"}
    assert kept <= deducted and {o for o in deducted if status[o] == "RESTORED"} == deducted - kept
    for pid, stock in initial.items():
        taken = sum(orders[o].get(pid, 0) for o in kept)
        after = (await catalog.get(pid))["stock"]
        assert after == stock - taken and after >= 0
    lines = await catalog.pool.fetch(
        "SELECT order_id, product_id, quantity FROM order_stock_lines WHERE order_id = ANY($1)", list(orders)
    )
    assert {(r["order_id"], r["product_id"], r["quantity"]) for r in lines} == {
        (o, p, q) for o in deducted for p, q in orders[o].items()
    }


@pytest_asyncio.fixture
async def logged_pool(catalog: Catalog) -> AsyncIterator[tuple[asyncpg.Pool, list[str]]]:
    pool = await create_pool(catalog.settings.database_url, 1, 1)
    statements: list[str] = []
    async with pool.acquire() as conn:
        conn.add_query_logger(lambda record: statements.append(" ".join(record.query.split())))
    try:
        yield pool, statements
    finally:
        await close_pool(pool)


async def counted(catalog: Catalog, logged: tuple[asyncpg.Pool, list[str]], *commands: SagaCommand) -> list[str]:
    pool, statements = logged
    statements.clear()
    await run(catalog, *commands, pool=pool)
    await asyncio.sleep(0)  # query loggers are called soon after each statement
    return list(statements)


async def test_statements_per_batch_do_not_grow_with_its_size(
    catalog: Catalog,
    logged_pool: tuple[asyncpg.Pool, list[str]],
) -> None:
    a = (await catalog.create(stock=1000))["product_id"]
    b = (await catalog.create(stock=1000))["product_id"]
    await counted(catalog, logged_pool, deduct(oid(), (a, 1)))  # the connection's first use introspects types
    by_size = {}
    for size in (1, 4, 16):
        by_size[size] = await counted(
            catalog,
            logged_pool,
            *(deduct(oid(), (a, 1), (b, 1)) if i % 2 else deduct(oid(), (b, 2), (a, 1)) for i in range(size)),
        )
    # BEGIN, inbox claim, lock-and-read the products, claim the orders, one write, outbox, COMMIT
    assert [len(s) for s in by_size.values()] == [7, 7, 7], by_size[16]
    assert by_size[16][0].startswith("BEGIN") and by_size[16][-1] == "COMMIT;"
    # replays and restores of known orders add one read, whatever their number
    orders = [oid() for _ in range(12)]
    await run(catalog, *(deduct(o, (a, 1)) for o in orders))
    small = await counted(catalog, logged_pool, deduct(orders[0], (a, 1)), RestoreStock(order_id=orders[1]))
    big = await counted(
        catalog,
        logged_pool,
        *(deduct(o, (a, 1)) for o in orders[2:7]),
        *(RestoreStock(order_id=o) for o in orders[7:]),
        *(deduct(oid(), (b, 1)) for _ in range(10)),
        RestoreStock(order_id=oid()),
    )
    assert len(small) == len(big) == 8, big
    # a: 1 + 21 + 12 taken, 6 restored; b: 2 + 6 + 24 + 10 taken
    assert [(await catalog.get(p))["stock"] for p in (a, b)] == [1000 - 1 - 21 - 12 + 6, 1000 - 42]
