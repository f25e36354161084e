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

from catalog_service.domain.commands import DeductStock, RestoreStock, StockCommand
from catalog_service.domain.model import MAX_ID
from catalog_service.domain.stock import Answer, OrderStockStatus, apply_commands
from catalog_service.service.ports import UnitOfWork


async def apply_stock_commands(uow: UnitOfWork, commands: Sequence[StockCommand]) -> list[Answer]:
    """Apply ``commands`` in order, as if one after the other; the answer to each, in order
    (``None``: deducted / restored). The caller commits."""
    if not commands:
        return []
    wanted = sorted({pid for c in commands if isinstance(c, DeductStock) for pid in c.wanted if 1 <= pid <= MAX_ID})
    restoring = sorted({c.order_id for c in commands if isinstance(c, RestoreStock)})
    # 1. every product the batch may touch, locked in id order before anything else
    products = await uow.products.lock_for_batch(wanted, restoring)
    # 2. claim every order (as its first command would), 3. read the ones already known
    claims: dict[str, OrderStockStatus] = {}
    for c in commands:
        claims.setdefault(
            c.order_id, OrderStockStatus.DEDUCTED if isinstance(c, DeductStock) else OrderStockStatus.FENCED
        )
    new = await uow.order_stock.claim_many(claims)
    known = await uow.order_stock.read_many([order_id for order_id in claims if order_id not in new])
    # an order deducted by a transaction that committed after step 1 read its lines: lock its
    # products now (rare; a deadlock this may cause is retried one by one by the caller)
    missing = sorted(
        {pid for order_id in restoring if order_id in known for pid in known[order_id].taken if pid not in products}
    )
    if missing:
        products.update(await uow.products.lock_many(missing))
    outcome = apply_commands(commands, products, known)
    # 4. one write: the products, the orders whose record is not what the claim stored, the lines
    changed = {
        order_id: record
        for order_id, record in outcome.orders.items()
        if order_id not in new or record.status is not claims[order_id] or record.failure is not None
    }
    await uow.order_stock.write_batch(
        [outcome.products[pid] for pid in sorted(outcome.products)], changed, outcome.lines
    )
    return outcome.answers


async def deduct_stock(uow: UnitOfWork, cmd: DeductStock) -> Answer:
    """Take every line from stock or none (a batch of one)."""
    return (await apply_stock_commands(uow, [cmd]))[0]


async def restore_stock(uow: UnitOfWork, cmd: RestoreStock) -> Answer:
    """Put back exactly what the order took, once; fence an order that took nothing (a batch of one)."""
    return (await apply_stock_commands(uow, [cmd]))[0]
