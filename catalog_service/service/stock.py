"""The saga's stock step: a batch of DeductStock / RestoreStock inside the caller's unit of work.

The order id is the business key: ``order_stock`` records what was decided for each order, so a
re-sent command gets the same answer and changes nothing more, and a restore that comes first
fences the order against a late deduction.

A batch costs the same few statements whatever its size: lock and read the products (id order,
before anything else), claim the orders, read the already known ones (only if any), write.
The pure ``domain.stock.apply_commands`` decides everything in between.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalog_service.db import order_stock
from catalog_service.db import products as repo
from catalog_service.domain.model import MAX_ID
from catalog_service.domain.stock import (
    DeductCommand,
    OrderStockStatus,
    Refusal,
    RestoreCommand,
    StockCommand,
    apply_commands,
    merge_lines,
)
from shared.db.uow import UnitOfWork
from shared.events.saga import DeductStock, RestoreStock, SagaReply, StockDeducted, StockDeductionFailed, StockRestored

Command = DeductStock | RestoreStock


def _answer(command: Command, refusal: Refusal | None) -> SagaReply:
    if isinstance(command, RestoreStock):
        return StockRestored(order_id=command.order_id, command_id=command.event_id)
    if refusal is None:
        return StockDeducted(order_id=command.order_id, command_id=command.event_id)
    return StockDeductionFailed(
        order_id=command.order_id,
        command_id=command.event_id,
        code=refusal.code.value,
        reason=refusal.reason,
        product_id=refusal.product_id,
    )


def _decision(command: Command) -> StockCommand:
    if isinstance(command, DeductStock):
        return DeductCommand(command.order_id, merge_lines((line.product_id, line.quantity) for line in command.lines))
    return RestoreCommand(command.order_id)


async def apply_stock_commands(uow: UnitOfWork, commands: Sequence[Command]) -> list[SagaReply]:
    """Apply ``commands`` in order, as if one after the other; the reply to each, in order."""
    if not commands:
        return []
    conn = uow.conn
    decisions = [_decision(command) for command in commands]
    wanted = sorted({pid for d in decisions if isinstance(d, DeductCommand) for pid in d.wanted if 1 <= pid <= MAX_ID})
    restoring = sorted({d.order_id for d in decisions if isinstance(d, RestoreCommand)})
    # 1. every product the batch may touch, locked in id order before anything else
    products = await repo.lock_for_batch(conn, wanted, restoring)
    # 2. claim every order (as its first command would), 3. read the ones already known
    claims: dict[str, OrderStockStatus] = {}
    for d in decisions:
        claims.setdefault(
            d.order_id, OrderStockStatus.DEDUCTED if isinstance(d, DeductCommand) else OrderStockStatus.FENCED
        )
    new = await order_stock.claim_many(conn, claims)
    known = await order_stock.read_many(conn, [order_id for order_id in claims if order_id not in new])
    # an order deducted by a transaction that committed after step 1 read its lines: lock its
    # products now (rare; a deadlock this may cause is retried one by one by the caller)
    missing = sorted(
        {pid for order_id in restoring if order_id in known for pid in known[order_id].taken if pid not in products}
    )
    if missing:
        products.update(await repo.lock_many(conn, missing))
    outcome = apply_commands(decisions, products, known)
    # 4. one write: the products, the orders whose record is not what the claim stored, the lines
    changed = {
        order_id: record
        for order_id, record in outcome.orders.items()
        if order_id not in new or record.status is not claims[order_id] or record.failure is not None
    }
    await order_stock.write_batch(
        conn, [outcome.products[pid] for pid in sorted(outcome.products)], changed, outcome.lines
    )
    return [_answer(command, answer) for command, answer in zip(commands, outcome.answers, strict=True)]


async def deduct_stock(uow: UnitOfWork, command: DeductStock) -> SagaReply:
    """Take every line from stock or none (a batch of one)."""
    return (await apply_stock_commands(uow, [command]))[0]


async def restore_stock(uow: UnitOfWork, command: RestoreStock) -> SagaReply:
    """Put back exactly what the order took, once; fence an order that took nothing (a batch of one)."""
    return (await apply_stock_commands(uow, [command]))[0]
