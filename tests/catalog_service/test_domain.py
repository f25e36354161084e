"""The catalog's pure domain: the status rule, administrator changes and the stock decisions."""

from __future__ import annotations

import pytest

from catalog_service.domain.errors import InvalidProductChangeError
from catalog_service.domain.model import (
    Product,
    ProductChange,
    apply_change,
    derive_status,
    new_product,
)
from catalog_service.domain.model import (
    ProductStatus as S,
)
from catalog_service.domain.stock import (
    Deduction,
    FailureCode,
    OrderStockStatus,
    Refusal,
    deduct,
    merge_lines,
    replay_refusal,
    restore,
)


def product(pid: int, stock: int, status: S | None = None) -> Product:
    return Product(pid, f"p{pid}", 100, stock, status or derive_status(stock, False))


@pytest.mark.parametrize(
    ("stock", "discontinued", "expected"),
    [(0, False, S.SOLD_OUT), (1, False, S.SELLABLE), (0, True, S.DISCONTINUED), (5, True, S.DISCONTINUED)],
)
def test_status_follows_stock_unless_discontinued(stock: int, discontinued: bool, expected: S) -> None:
    assert derive_status(stock, discontinued) is expected


def test_new_product_without_stock_is_sold_out() -> None:
    assert new_product("a", 1, 0).status is S.SOLD_OUT
    assert new_product("a", 1, 3).status is S.SELLABLE


@pytest.mark.parametrize(
    ("before", "change", "stock", "status"),
    [
        (product(1, 0), ProductChange(stock=5), 5, S.SELLABLE),  # restock
        (product(1, 5), ProductChange(stock=0), 0, S.SOLD_OUT),
        (product(1, 5), ProductChange(status=S.DISCONTINUED), 5, S.DISCONTINUED),
        (product(1, 5, S.DISCONTINUED), ProductChange(stock=9), 9, S.DISCONTINUED),  # restock keeps it
        (product(1, 5, S.DISCONTINUED), ProductChange(status=S.SELLABLE), 5, S.SELLABLE),
        (product(1, 0, S.DISCONTINUED), ProductChange(status=S.SELLABLE), 0, S.SOLD_OUT),
        (product(1, 0), ProductChange(stock=3, status=S.SELLABLE), 3, S.SELLABLE),
        (product(1, 4), ProductChange(name="n", price=7), 4, S.SELLABLE),
    ],
)
def test_admin_changes(before: Product, change: ProductChange, stock: int, status: S) -> None:
    after = apply_change(before, change)
    assert (after.stock, after.status) == (stock, status)
    assert after.name == (change.name or before.name)
    assert after.price == (before.price if change.price is None else change.price)


def test_sold_out_cannot_be_set_directly() -> None:
    with pytest.raises(InvalidProductChangeError):
        apply_change(product(1, 5), ProductChange(status=S.SOLD_OUT))


def test_merge_lines_sums_and_sorts() -> None:
    assert list(merge_lines([(3, 1), (1, 2), (3, 4)]).items()) == [(1, 2), (3, 5)]
    with pytest.raises(ValueError):
        merge_lines([(1, 0)])


def test_deduct_takes_every_line_and_sells_out() -> None:
    outcome = deduct({1: product(1, 2), 2: product(2, 10)}, {1: 2, 2: 3})
    assert isinstance(outcome, Deduction)
    assert [(p.product_id, p.stock, p.status) for p in outcome.products] == [(1, 0, S.SOLD_OUT), (2, 7, S.SELLABLE)]
    assert outcome.taken == {1: 2, 2: 3}


@pytest.mark.parametrize(
    ("products", "wanted", "refusal"),
    [
        ({1: product(1, 2)}, {1: 3}, Refusal(FailureCode.OUT_OF_STOCK, 1)),
        ({1: product(1, 0)}, {1: 1}, Refusal(FailureCode.OUT_OF_STOCK, 1)),  # SOLD_OUT is just short
        ({1: product(1, 5), 2: product(2, 1)}, {1: 1, 2: 2}, Refusal(FailureCode.OUT_OF_STOCK, 2)),
        ({1: product(1, 5)}, {1: 1, 9: 1}, Refusal(FailureCode.PRODUCT_NOT_SELLABLE, 9)),  # unknown
        ({1: product(1, 5, S.DISCONTINUED)}, {1: 1}, Refusal(FailureCode.PRODUCT_NOT_SELLABLE, 1)),
        # not sellable wins over a shortage on a lower id
        (
            {1: product(1, 0), 2: product(2, 5, S.DISCONTINUED)},
            {1: 1, 2: 1},
            Refusal(FailureCode.PRODUCT_NOT_SELLABLE, 2),
        ),
    ],
)
def test_deduct_refuses_all_or_nothing(products: dict[int, Product], wanted: dict[int, int], refusal: Refusal) -> None:
    assert deduct(products, wanted) == refusal


def test_restore_puts_back_and_lifts_sold_out_but_not_discontinued() -> None:
    restored = restore({1: product(1, 0), 2: product(2, 0, S.DISCONTINUED)}, {1: 2, 2: 3})
    assert [(p.stock, p.status) for p in restored] == [(2, S.SELLABLE), (3, S.DISCONTINUED)]


@pytest.mark.parametrize(
    ("status", "code", "pid", "expected"),
    [
        (OrderStockStatus.DEDUCTED, None, None, None),
        (OrderStockStatus.FAILED, "OUT_OF_STOCK", 4, Refusal(FailureCode.OUT_OF_STOCK, 4)),
        (OrderStockStatus.FAILED, "PRODUCT_NOT_SELLABLE", 5, Refusal(FailureCode.PRODUCT_NOT_SELLABLE, 5)),
        (OrderStockStatus.RESTORED, None, None, Refusal(FailureCode.ALREADY_COMPENSATED)),
        (OrderStockStatus.FENCED, None, None, Refusal(FailureCode.ALREADY_COMPENSATED)),
    ],
)
def test_a_resent_deduction_gets_the_same_answer(status, code, pid, expected) -> None:
    assert replay_refusal(status, code, pid) == expected


def test_refusal_reason_names_the_product() -> None:
    assert Refusal(FailureCode.OUT_OF_STOCK, 7).reason == "OUT_OF_STOCK: product 7"
