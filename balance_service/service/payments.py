"""The saga's balance step: Deduct and Refund, applied inside the consumer's unit of work."""

from __future__ import annotations

from balance_service.db import payments as payments_db
from balance_service.domain.commands import Deduct, Refund
from balance_service.domain.payments import (
    DeductOutcome, DeductRefused, RefundAction, Refunded, deduct_result, fence, refund_action,
    refund_replay, refused, replay_deduct,
)
from balance_service.service.unit_of_work import Connected


async def deduct(uow: Connected, cmd: Deduct) -> DeductOutcome:
    """Take the order's amount at most once; a Deduct seen before gets the same answer."""
    conn = uow.conn
    existing = await payments_db.get(conn, cmd.order_id)
    if existing is not None:
        return replay_deduct(existing)
    before, after = await payments_db.deduct(conn, cmd.order_id, cmd.user_id, cmd.amount)
    outcome = deduct_result(cmd.user_id, cmd.amount, before, after)
    if isinstance(outcome, DeductRefused):
        if not await payments_db.insert(conn, refused(cmd.order_id, cmd.user_id, cmd.amount, outcome)):
            raced = await payments_db.get(conn, cmd.order_id)
            assert raced is not None
            return replay_deduct(raced)
    return outcome


async def refund(uow: Connected, cmd: Refund) -> Refunded:
    """Give back what the order took, once; fence an order that took nothing."""
    conn = uow.conn
    for _ in range(3):
        amount = await payments_db.refund(conn, cmd.order_id)
        if amount is not None:
            return Refunded(amount)
        existing = await payments_db.get(conn, cmd.order_id, lock=True)
        action = refund_action(existing)
        if action is RefundAction.DONE:
            assert existing is not None
            return refund_replay(existing)
        if action is RefundAction.FENCE and await payments_db.insert(conn, fence(cmd.order_id)):
            return Refunded(0)
        # A deduction was recorded concurrently: go round and give it back.
    raise RuntimeError(f"refund of order {cmd.order_id} kept racing")
