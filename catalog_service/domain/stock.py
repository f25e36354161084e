"""The stock step of the payment saga as pure decisions.

:func:`deduct` decides one order over locked products: either the products' new states and
what the order took, or the one failure that refuses the whole order (all lines or none).
:func:`apply_commands` folds a whole consumed batch of DeductStock / RestoreStock in message
order over the products the service layer locked and the order records it read, and returns the
answer to each command plus the changes to write in one statement.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from catalog_service.domain.commands import DeductStock, StockCommand
from catalog_service.domain.model import Product


class OrderStockStatus(enum.StrEnum):
    """What the catalog did for an order (the business key of the saga step)."""

    DEDUCTED = "DEDUCTED"
    RESTORED = "RESTORED"
    FAILED = "FAILED"
    FENCED = "FENCED"  # restored before anything was taken: a later deduction is refused


class FailureCode(enum.StrEnum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PRODUCT_NOT_SELLABLE = "PRODUCT_NOT_SELLABLE"
    ALREADY_COMPENSATED = "ALREADY_COMPENSATED"


@dataclass(frozen=True)
class Refusal:
    """Why an order's deduction is refused, naming the product when there is one."""

    code: FailureCode
    product_id: int | None = None

    @property
    def reason(self) -> str:
        if self.product_id is None:
            return self.code.value
        return f"{self.code.value}: product {self.product_id}"


Answer = Refusal | None
"""The answer to one stock command: ``None`` means deducted (or restored), a refusal otherwise."""


@dataclass(frozen=True)
class Deduction:
    """The products after an accepted deduction, and the quantity taken per product."""

    products: list[Product]
    taken: dict[int, int]


def merge_lines(lines: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Quantity per product id, in product-id order (a product named twice counts twice)."""
    merged: dict[int, int] = {}
    for product_id, quantity in lines:
        if quantity <= 0:
            raise ValueError(f"quantity {quantity} of product {product_id} must be positive")
        merged[product_id] = merged.get(product_id, 0) + quantity
    return dict(sorted(merged.items()))


def deduct(products: Mapping[int, Product], wanted: Mapping[int, int]) -> Deduction | Refusal:
    """Take ``wanted`` from ``products`` (id -> locked product), all lines or none.

    A product unknown or discontinued refuses with PRODUCT_NOT_SELLABLE before any shortage is
    considered; otherwise the lowest product id that is short refuses with OUT_OF_STOCK.
    """
    ids = sorted(wanted)
    for product_id in ids:
        product = products.get(product_id)
        if product is None or not product.sellable:
            return Refusal(FailureCode.PRODUCT_NOT_SELLABLE, product_id)
    for product_id in ids:
        if products[product_id].stock < wanted[product_id]:
            return Refusal(FailureCode.OUT_OF_STOCK, product_id)
    changed = [products[pid].with_stock(products[pid].stock - wanted[pid]) for pid in ids]
    return Deduction(changed, {pid: wanted[pid] for pid in ids})


def restore(products: Mapping[int, Product], taken: Mapping[int, int]) -> list[Product]:
    """``products`` with what an order took put back (status follows the stock)."""
    return [products[pid].with_stock(products[pid].stock + qty) for pid, qty in sorted(taken.items())]


def replay_refusal(status: OrderStockStatus, code: str | None, product_id: int | None) -> Refusal | None:
    """The answer to a DeductStock for an order already handled: ``None`` means StockDeducted."""
    if status is OrderStockStatus.DEDUCTED:
        return None
    if status is OrderStockStatus.FAILED:
        return Refusal(FailureCode(code or FailureCode.OUT_OF_STOCK), product_id)
    return Refusal(FailureCode.ALREADY_COMPENSATED)


# --- a consumed batch of saga commands, decided in one pass -----------------------------------


@dataclass(frozen=True)
class OrderRecord:
    """What the catalog decided for an order so far (a row of ``order_stock`` and its lines)."""

    status: OrderStockStatus
    failure: Refusal | None = None  # FAILED: the stored refusal
    taken: Mapping[int, int] = field(default_factory=dict)  # DEDUCTED / RESTORED: what the order took

    def replay(self) -> Refusal | None:
        """The answer to a DeductStock for this order: ``None`` means StockDeducted."""
        if self.status is OrderStockStatus.FAILED:
            return self.failure or Refusal(FailureCode.OUT_OF_STOCK)
        return replay_refusal(self.status, None, None)


@dataclass(frozen=True)
class BatchOutcome:
    """The answer to every command (in order; ``None`` = deducted / restored) and what to write.

    ``products``: the final state of every product whose stock changed; ``orders``: the final
    record of every order whose record changed (new ones included); ``lines``: what each order
    deducted in this batch took (rows for ``order_stock_lines``).
    """

    answers: list[Answer]
    products: dict[int, Product]
    orders: dict[str, OrderRecord]
    lines: dict[str, dict[int, int]]


_BIGINT = range(-(2**63), 2**63)


def stored(refusal: Refusal) -> Refusal:
    """The refusal as ``order_stock`` keeps it: a product id beyond bigint is kept as unknown."""
    if refusal.product_id is None or refusal.product_id in _BIGINT:
        return refusal
    return Refusal(refusal.code)


def apply_commands(
    commands: Sequence[StockCommand],
    products: Mapping[int, Product],
    orders: Mapping[str, OrderRecord],
) -> BatchOutcome:
    """Fold a batch of commands, in order, over the locked ``products`` and the known ``orders``.

    The same as applying the commands one after the other: a later order sees the stock the
    earlier ones left, a re-sent DeductStock replays the stored answer (also when the first one
    is earlier in the same batch), a RestoreStock puts back what its order took once, and one
    for an unknown order fences it. ``products`` must hold every product a restore puts back.
    """
    stock = dict(products)
    known = dict(orders)
    answers: list[Answer] = []
    changed_products: dict[int, Product] = {}
    changed_orders: dict[str, OrderRecord] = {}
    lines: dict[str, dict[int, int]] = {}
    for command in commands:
        record = known.get(command.order_id)
        if isinstance(command, DeductStock):
            if record is not None:
                answers.append(record.replay())
                continue
            outcome = deduct(stock, command.wanted)
            if isinstance(outcome, Refusal):
                record = OrderRecord(OrderStockStatus.FAILED, stored(outcome))
                answers.append(outcome)
            else:
                for product in outcome.products:
                    stock[product.product_id] = changed_products[product.product_id] = product
                record = OrderRecord(OrderStockStatus.DEDUCTED, taken=outcome.taken)
                lines[command.order_id] = dict(outcome.taken)
                answers.append(None)
        else:
            answers.append(None)
            if record is None:
                record = OrderRecord(OrderStockStatus.FENCED)
            elif record.status is OrderStockStatus.DEDUCTED:
                for product in restore(stock, record.taken):
                    stock[product.product_id] = changed_products[product.product_id] = product
                record = OrderRecord(OrderStockStatus.RESTORED, taken=record.taken)
            else:
                continue
        known[command.order_id] = changed_orders[command.order_id] = record
    return BatchOutcome(answers, changed_products, changed_orders, lines)
