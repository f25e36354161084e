"""The saga's stock step under concurrency, against the real PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from shared.events.saga import StockDeducted, StockDeductionFailed, StockRestored
from tests.catalog_service.conftest import Catalog

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


def oid() -> str:
    return f"o-{uuid.uuid4().hex}"


async def test_stock_10_and_100_concurrent_one_unit_deductions(catalog: Catalog) -> None:
    product = await catalog.create(stock=10)
    pid = product["product_id"]
    replies = await asyncio.gather(*(catalog.deduct(oid(), [(pid, 1)]) for _ in range(100)))
    ok = [r for r in replies if isinstance(r, StockDeducted)]
    failed = [r for r in replies if isinstance(r, StockDeductionFailed)]
    assert len(ok) == 10 and len(failed) == 90
    assert {(f.code, f.product_id) for f in failed} == {("OUT_OF_STOCK", pid)}
    after = await catalog.get(pid)
    assert (after["stock"], after["status"]) == (0, "SOLD_OUT")
    default_list = await (await catalog.client.get("/api/v1/products", params={"limit": "100"})).json()
    assert pid not in {item["product_id"] for item in default_list["items"]}


async def test_30_deductions_racing_20_restores_end_exact(catalog: Catalog) -> None:
    pid = (await catalog.create(stock=1000))["product_id"]
    orders = [(oid(), random.randint(1, 9)) for _ in range(30)]
    restored = {order for order, _ in orders[:20]}
    calls = [catalog.deduct(order, [(pid, qty)]) for order, qty in orders]
    calls += [catalog.restore(order) for order in restored]
    random.shuffle(calls)
    replies = await asyncio.gather(*calls)
    assert sum(isinstance(r, StockRestored) for r in replies) == 20
    for reply in replies:
        if isinstance(reply, StockDeductionFailed):
            assert reply.code == "ALREADY_COMPENSATED" and reply.order_id in restored
    kept = sum(qty for order, qty in orders if order not in restored)
    assert (await catalog.get(pid))["stock"] == 1000 - kept
    # a second restore of every order, and a re-sent deduction of every order, change nothing
    await asyncio.gather(*(catalog.restore(order) for order in restored))
    again = await asyncio.gather(*(catalog.deduct(order, [(pid, qty)]) for order, qty in orders))
    assert (await catalog.get(pid))["stock"] == 1000 - kept
    for (order, _), reply in zip(orders, again, strict=True):
        assert isinstance(reply, StockDeductionFailed if order in restored else StockDeducted)
    statuses = await catalog.pool.fetch(
        "SELECT status, count(*) FROM order_stock WHERE order_id = ANY($1) GROUP BY status", [o for o, _ in orders]
    )
    counts = {row["status"]: row["count"] for row in statuses}
    assert counts.get("DEDUCTED") == 10 and counts.get("RESTORED", 0) + counts.get("FENCED", 0) == 20


async def test_opposite_line_orders_never_deadlock(catalog: Catalog) -> None:
    a = (await catalog.create(stock=10_000))["product_id"]
    b = (await catalog.create(stock=10_000))["product_id"]
    rounds = 60
    calls = []
    for _ in range(rounds):
        calls.append(catalog.deduct(oid(), [(a, 1), (b, 2)]))
        calls.append(catalog.deduct(oid(), [(b, 1), (a, 2)]))
    replies = await asyncio.gather(*calls)  # a deadlock error would raise here
    assert all(isinstance(r, StockDeducted) for r in replies)
    assert (await catalog.get(a))["stock"] == 10_000 - 3 * rounds
    assert (await catalog.get(b))["stock"] == 10_000 - 3 * rounds


async def test_all_or_nothing_and_not_sellable(catalog: Catalog) -> None:
    a = (await catalog.create(stock=5))["product_id"]
    b = (await catalog.create(stock=1))["product_id"]
    short = await catalog.deduct(oid(), [(a, 2), (b, 2)])
    assert isinstance(short, StockDeductionFailed) and (short.code, short.product_id) == ("OUT_OF_STOCK", b)
    unknown = await catalog.deduct(oid(), [(a, 1), (2**62, 1)])
    assert isinstance(unknown, StockDeductionFailed) and unknown.code == "PRODUCT_NOT_SELLABLE"
    assert unknown.product_id == 2**62
    resp = await catalog.client.patch(f"/api/v1/admin/products/{b}", json={"status": "DISCONTINUED"})
    assert resp.status == 200
    gone = await catalog.deduct(oid(), [(b, 1)])
    assert isinstance(gone, StockDeductionFailed) and (gone.code, gone.product_id) == ("PRODUCT_NOT_SELLABLE", b)
    assert (await catalog.get(a))["stock"] == 5 and (await catalog.get(b))["stock"] == 1


async def test_restore_brings_a_sold_out_product_back(catalog: Catalog) -> None:
    pid = (await catalog.create(stock=3))["product_id"]
    order = oid()
    assert isinstance(await catalog.deduct(order, [(pid, 3)]), StockDeducted)
    assert (await catalog.get(pid))["status"] == "SOLD_OUT"
    assert isinstance(await catalog.restore(order), StockRestored)
    after = await catalog.get(pid)
    assert (after["stock"], after["status"]) == (3, "SELLABLE")


async def test_absurd_product_ids_are_refused_not_crashed(catalog: Catalog) -> None:
    order = oid()
    for _ in range(2):  # the re-sent command replays the stored refusal
        reply = await catalog.deduct(order, [(2**70, 1), (-5, 1)])
        assert isinstance(reply, StockDeductionFailed) and reply.code == "PRODUCT_NOT_SELLABLE"
