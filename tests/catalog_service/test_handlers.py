"""The catalog's handlers on the in-memory fakes (no IO): the product use cases, the saga's stock
step, and the consumer's batch (inbox, replies through the unit of work)."""

from __future__ import annotations

import uuid

import pytest

from catalog_service.domain.commands import (
    CreateProduct,
    DeductStock,
    GetProduct,
    ListProducts,
    LookupProducts,
    PatchProduct,
    RestoreStock,
)
from catalog_service.domain.errors import InvalidProductChangeError, ProductNotFoundError
from catalog_service.domain.model import ProductChange, ProductStatus
from catalog_service.domain.stock import FailureCode, OrderStockStatus, Refusal
from catalog_service.messaging.consumers import apply_stock_batch
from catalog_service.service import stock
from catalog_service.service.products import (
    create_product,
    get_product,
    list_products,
    lookup_products,
    patch_product,
)
from shared.events import saga
from shared.messaging import topics
from shared.messaging.envelope import Incoming
from tests.catalog_service.fakes import FakeDatabase, fake_deps

pytestmark = pytest.mark.asyncio


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


async def test_create_product_stores_it_with_its_status(db: FakeDatabase) -> None:
    deps = fake_deps(db)
    tea = await create_product(deps.uow, CreateProduct("tea", 1500, 0))
    assert (tea.product_id, tea.status) == (1, ProductStatus.SOLD_OUT)
    assert (await create_product(deps.uow, CreateProduct("cup", 1, 3))).status is ProductStatus.SELLABLE
    assert db.products[1] == tea and db.commits == 2 and db.outbox == []


async def test_patch_product_changes_under_the_rules(db: FakeDatabase) -> None:
    deps = fake_deps(db)
    tea = await create_product(deps.uow, CreateProduct("tea", 1500, 0))
    patched = await patch_product(deps.uow, PatchProduct(tea.product_id, ProductChange(stock=5, price=0)))
    assert (patched.stock, patched.price, patched.status) == (5, 0, ProductStatus.SELLABLE)
    assert await get_product(deps.single_statement, GetProduct(tea.product_id)) == patched


async def test_patch_product_refusals_change_nothing(db: FakeDatabase) -> None:
    deps = fake_deps(db)
    tea = await create_product(deps.uow, CreateProduct("tea", 1500, 2))
    with pytest.raises(ProductNotFoundError):
        await patch_product(deps.uow, PatchProduct(99, ProductChange(stock=1)))
    with pytest.raises(InvalidProductChangeError):
        await patch_product(deps.uow, PatchProduct(tea.product_id, ProductChange(status=ProductStatus.SOLD_OUT)))
    assert db.products == {tea.product_id: tea} and db.commits == 1


async def test_get_product_of_an_unknown_id_is_not_found() -> None:
    with pytest.raises(ProductNotFoundError) as raised:
        await get_product(fake_deps().single_statement, GetProduct(7))
    assert raised.value.product_id == 7


async def test_list_products_pages_until_the_last(db: FakeDatabase) -> None:
    deps = fake_deps(db)
    for i in range(5):
        await create_product(deps.uow, CreateProduct(f"p{i}", 1, i % 2))  # p0, p2, p4 are sold out
    first = await list_products(deps.single_statement, ListProducts(only_sellable=False, after=0, limit=2))
    assert ([p.product_id for p in first.items], first.last_id) == ([1, 2], 2)
    last = await list_products(deps.single_statement, ListProducts(only_sellable=False, after=4, limit=2))
    assert ([p.product_id for p in last.items], last.last_id) == ([5], None)
    exact = await list_products(deps.single_statement, ListProducts(only_sellable=True, after=0, limit=2))
    assert ([p.product_id for p in exact.items], exact.last_id) == ([2, 4], None)


async def test_lookup_products_returns_the_existing_ones_once_in_id_order(db: FakeDatabase) -> None:
    deps = fake_deps(db)
    a = await create_product(deps.uow, CreateProduct("a", 1, 1))
    b = await create_product(deps.uow, CreateProduct("b", 1, 0))
    found = await lookup_products(deps.single_statement, LookupProducts([b.product_id, 99, a.product_id, a.product_id]))
    assert found == [a, b]


async def test_the_stock_step_deducts_replays_and_restores(db: FakeDatabase) -> None:
    deps = fake_deps(db)
    pid = (await create_product(deps.uow, CreateProduct("a", 1, 3))).product_id
    async with deps.uow() as uow:
        answers = await stock.apply_stock_commands(
            uow,
            [DeductStock("x", {pid: 2}), DeductStock("y", {pid: 2}), DeductStock("x", {pid: 2}), RestoreStock("z")],
        )
        await uow.commit()
    assert answers == [None, Refusal(FailureCode.OUT_OF_STOCK, pid), None, None]
    assert db.products[pid].stock == 1
    assert {o: r.status for o, r in db.orders.items()} == {
        "x": OrderStockStatus.DEDUCTED,
        "y": OrderStockStatus.FAILED,
        "z": OrderStockStatus.FENCED,
    }
    assert (db.orders["y"].failure_code, db.orders["y"].failure_product_id) == ("OUT_OF_STOCK", pid)
    assert db.lines == {"x": {pid: 2}}
    async with deps.uow() as uow:
        assert await stock.restore_stock(uow, RestoreStock("x")) is None
        assert await stock.deduct_stock(uow, DeductStock("z", {pid: 1})) == Refusal(FailureCode.ALREADY_COMPENSATED)
        await uow.commit()
    assert (db.products[pid].stock, db.products[pid].status) == (3, ProductStatus.SELLABLE)
    assert db.orders["x"].status is OrderStockStatus.RESTORED


async def test_an_uncommitted_stock_step_leaves_nothing(db: FakeDatabase) -> None:
    deps = fake_deps(db)
    pid = (await create_product(deps.uow, CreateProduct("a", 1, 3))).product_id
    async with deps.uow() as uow:
        assert await stock.deduct_stock(uow, DeductStock("x", {pid: 1})) is None
    assert db.products[pid].stock == 3 and db.orders == {} and db.lines == {}


def incoming(*messages: saga.SagaCommand) -> list[Incoming]:
    return [
        Incoming(topics.STOCK_COMMANDS, 0, offset, m.order_id, m, request_id=f"req-{offset}")
        for offset, m in enumerate(messages)
    ]


async def test_the_consumer_applies_each_message_once_and_replies_through_the_outbox(db: FakeDatabase) -> None:
    deps = fake_deps(db, replies_topic="t.saga.replies")
    pid = (await create_product(deps.uow, CreateProduct("a", 1, 5))).product_id
    order = f"o-{uuid.uuid4().hex}"
    first = saga.DeductStock(order_id=order, lines=[saga.StockLine(product_id=pid, quantity=3)])
    resent = saga.DeductStock(order_id=order, lines=[saga.StockLine(product_id=pid, quantity=3)])
    short = saga.DeductStock(
        order_id="short",
        lines=[saga.StockLine(product_id=pid, quantity=2), saga.StockLine(product_id=pid, quantity=1)],
    )
    restore = saga.RestoreStock(order_id=order)
    replies = await apply_stock_batch(deps, incoming(first, first, resent, short, restore))
    assert [type(r).__name__ for r in replies] == [
        "StockDeducted",
        "StockDeducted",
        "StockDeductionFailed",
        "StockRestored",
    ]
    assert [r.command_id for r in replies] == [first.event_id, resent.event_id, short.event_id, restore.event_id]
    failed = replies[2]
    assert isinstance(failed, saga.StockDeductionFailed)
    assert (failed.code, failed.product_id, failed.reason) == ("OUT_OF_STOCK", pid, f"OUT_OF_STOCK: product {pid}")
    assert db.products[pid].stock == 5
    sent = db.outbox[-4:]
    assert [(o.topic, o.key, o.message) for o in sent] == [("t.saga.replies", r.order_id, r) for r in replies]
    assert [o.request_id for o in sent] == ["req-0", "req-2", "req-3", "req-4"]
    # redelivered: the inbox knows every message, nothing is applied or sent again
    assert await apply_stock_batch(deps, incoming(first, resent, short, restore)) == []
    assert len(db.outbox) == 4 and db.products[pid].stock == 5
