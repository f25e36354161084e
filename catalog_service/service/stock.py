"""The saga's stock step: DeductStock and RestoreStock, each inside the caller's unit of work.

The order id is the business key: ``order_stock`` records what was decided for each order, so a
re-sent command gets the same answer and changes nothing more, and a restore that comes first
fences the order against a late deduction.
"""

from __future__ import annotations

from catalog_service.db import order_stock
from catalog_service.db import products as repo
from catalog_service.domain.model import MAX_ID
from catalog_service.domain.stock import OrderStockStatus, Refusal, deduct, merge_lines, replay_refusal, restore
from shared.db.uow import UnitOfWork
from shared.events.saga import DeductStock, RestoreStock, SagaReply, StockDeducted, StockDeductionFailed, StockRestored


def _answer(command: DeductStock, refusal: Refusal | None) -> SagaReply:
    if refusal is None:
        return StockDeducted(order_id=command.order_id, command_id=command.event_id)
    return StockDeductionFailed(
        order_id=command.order_id, command_id=command.event_id,
        code=refusal.code.value, reason=refusal.reason, product_id=refusal.product_id,
    )


async def deduct_stock(uow: UnitOfWork, command: DeductStock) -> SagaReply:
    """Take every line from stock or none; rows locked in product-id order."""
    conn = uow.conn
    if not await order_stock.claim(conn, command.order_id, OrderStockStatus.DEDUCTED):
        record = await order_stock.get(conn, command.order_id)
        refusal = replay_refusal(
            OrderStockStatus(record["status"]), record["failure_code"], record["failure_product_id"]
        )
        return _answer(command, refusal)
    wanted = merge_lines((line.product_id, line.quantity) for line in command.lines)
    locked = await repo.lock_many(conn, [pid for pid in wanted if 1 <= pid <= MAX_ID])
    outcome = deduct(locked, wanted)
    if isinstance(outcome, Refusal):
        await order_stock.mark_failed(conn, command.order_id, outcome)
        return _answer(command, outcome)
    await order_stock.write_stock(conn, outcome.products, command.order_id, outcome.taken)
    return _answer(command, None)


async def restore_stock(uow: UnitOfWork, command: RestoreStock) -> SagaReply:
    """Put back exactly what the order took, once; fence an order that took nothing."""
    conn = uow.conn
    reply = StockRestored(order_id=command.order_id, command_id=command.event_id)
    if await order_stock.claim(conn, command.order_id, OrderStockStatus.FENCED):
        return reply
    record = await order_stock.get(conn, command.order_id)
    if OrderStockStatus(record["status"]) is OrderStockStatus.DEDUCTED:
        taken = await order_stock.taken(conn, command.order_id)
        locked = await repo.lock_many(conn, list(taken))
        await order_stock.write_stock(conn, restore(locked, taken))
        await order_stock.set_status(conn, command.order_id, OrderStockStatus.RESTORED)
    return reply


async def lock_batch(uow: UnitOfWork, product_ids: list[int], restoring: list[str]) -> None:
    """Lock, in id order, every product a batch of commands may touch (see messaging.consumers)."""
    await repo.lock_for_batch(uow.conn, product_ids, restoring)
