"""The pure fold of a consumed batch of stock commands (no IO): same outcome as one after the other."""

from __future__ import annotations

from catalog_service.domain.commands import DeductStock as D
from catalog_service.domain.commands import RestoreStock as R
from catalog_service.domain.model import Product, derive_status
from catalog_service.domain.model import ProductStatus as S
from catalog_service.domain.stock import (
    FailureCode as F,
)
from catalog_service.domain.stock import (
    OrderRecord,
    Refusal,
    apply_commands,
)
from catalog_service.domain.stock import (
    OrderStockStatus as O,
)


def product(pid: int, stock: int, status: S | None = None) -> Product:
    return Product(pid, f"p{pid}", 100, stock, status or derive_status(stock, False))


def test_later_orders_see_the_stock_earlier_ones_left_in_message_order() -> None:
    out = apply_commands(
        [D("a", {1: 2}), D("b", {1: 2}), D("c", {1: 1}), D("d", {1: 1})],
        {1: product(1, 3)},
        {},
    )
    assert out.answers == [None, Refusal(F.OUT_OF_STOCK, 1), None, Refusal(F.OUT_OF_STOCK, 1)]
    assert (out.products[1].stock, out.products[1].status) == (0, S.SOLD_OUT)
    assert {o: r.status for o, r in out.orders.items()} == {
        "a": O.DEDUCTED,
        "b": O.FAILED,
        "c": O.DEDUCTED,
        "d": O.FAILED,
    }
    assert out.lines == {"a": {1: 2}, "c": {1: 1}}
    assert out.orders["b"].failure == Refusal(F.OUT_OF_STOCK, 1)


def test_all_or_nothing_across_products_and_not_sellable() -> None:
    products = {1: product(1, 5), 2: product(2, 1), 3: product(3, 9, S.DISCONTINUED)}
    out = apply_commands(
        [D("a", {1: 1, 2: 1}), D("b", {1: 1, 2: 1}), D("c", {1: 1, 3: 1}), D("d", {1: 1, 99: 1})],
        products,
        {},
    )
    assert out.answers == [
        None,
        Refusal(F.OUT_OF_STOCK, 2),
        Refusal(F.PRODUCT_NOT_SELLABLE, 3),
        Refusal(F.PRODUCT_NOT_SELLABLE, 99),
    ]
    assert out.products[1].stock == 4 and out.products[2].stock == 0 and 3 not in out.products
    assert list(out.lines) == ["a"]


def test_deduct_then_restore_in_one_batch_puts_back_once() -> None:
    out = apply_commands([D("a", {1: 4}), R("a"), R("a"), D("a", {1: 4})], {1: product(1, 4)}, {})
    assert out.answers == [None, None, None, Refusal(F.ALREADY_COMPENSATED)]
    assert (out.products[1].stock, out.products[1].status) == (4, S.SELLABLE)
    assert out.orders["a"] == OrderRecord(O.RESTORED, taken={1: 4})
    assert out.lines == {"a": {1: 4}}  # the lines are still stored: what the order took


def test_restore_first_fences_the_order_in_the_same_batch() -> None:
    out = apply_commands([R("a"), D("a", {1: 1})], {1: product(1, 5)}, {})
    assert out.answers == [None, Refusal(F.ALREADY_COMPENSATED)]
    assert out.products == {} and out.lines == {}
    assert out.orders == {"a": OrderRecord(O.FENCED)}


def test_a_resent_deduction_in_the_same_batch_replays_the_first_answer() -> None:
    out = apply_commands(
        [D("a", {1: 2}), D("a", {1: 2}), D("b", {1: 9}), D("b", {1: 1}), D("c", {2**70: 1}), D("c", {2**70: 1})],
        {1: product(1, 5)},
        {},
    )
    # c's product id is beyond bigint: stored without it, so the replay answers as a later batch would
    assert out.answers == [
        None,
        None,
        Refusal(F.OUT_OF_STOCK, 1),
        Refusal(F.OUT_OF_STOCK, 1),
        Refusal(F.PRODUCT_NOT_SELLABLE, 2**70),
        Refusal(F.PRODUCT_NOT_SELLABLE),
    ]
    assert out.products[1].stock == 3 and out.lines == {"a": {1: 2}}


def test_known_orders_replay_and_restore_what_they_took() -> None:
    known = {
        "done": OrderRecord(O.DEDUCTED, taken={1: 2, 2: 1}),
        "failed": OrderRecord(O.FAILED, Refusal(F.OUT_OF_STOCK, 2)),
        "fenced": OrderRecord(O.FENCED),
        "restored": OrderRecord(O.RESTORED, taken={1: 3}),
    }
    commands = [
        D("done", {1: 2, 2: 1}),
        D("failed", {2: 5}),
        D("fenced", {1: 1}),
        R("restored"),
        R("failed"),
        R("done"),
        D("done", {1: 2, 2: 1}),
    ]
    out = apply_commands(commands, {1: product(1, 0), 2: product(2, 0, S.DISCONTINUED)}, known)
    assert out.answers == [
        None,
        Refusal(F.OUT_OF_STOCK, 2),
        Refusal(F.ALREADY_COMPENSATED),
        None,
        None,
        None,
        Refusal(F.ALREADY_COMPENSATED),
    ]
    assert [(p.product_id, p.stock, p.status) for p in out.products.values()] == [
        (1, 2, S.SELLABLE),
        (2, 1, S.DISCONTINUED),
    ]
    assert out.orders == {"done": OrderRecord(O.RESTORED, taken={1: 2, 2: 1})}  # nothing else changed
    assert out.lines == {}


def test_an_empty_batch_changes_nothing() -> None:
    out = apply_commands([], {1: product(1, 1)}, {})
    assert (out.answers, out.products, out.orders, out.lines) == ([], {}, {}, {})
