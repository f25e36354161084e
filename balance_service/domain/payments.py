"""The balance step of the payment saga: what a Deduct or Refund does for an order.

The order id is the business key: one payment record per order. A Deduct seen before gets the
same answer again; a Refund gives back once; a Refund that comes first leaves a fence that
refuses a later Deduct.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from balance_service.domain.model import insufficient_reason

ALREADY_COMPENSATED = "ALREADY_COMPENSATED"
INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
USER_NOT_FOUND = "USER_NOT_FOUND"


class PaymentStatus(StrEnum):
    DEDUCTED = "DEDUCTED"
    REFUNDED = "REFUNDED"
    REFUSED = "REFUSED"


@dataclass(frozen=True)
class Payment:
    """What the saga did to the balance for one order."""

    order_id: str
    user_id: int | None
    amount: int
    status: PaymentStatus
    balance_after: int | None = None
    failure_code: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Deducted:
    amount: int
    balance_after: int


@dataclass(frozen=True)
class DeductRefused:
    code: str
    reason: str


@dataclass(frozen=True)
class Refunded:
    """``amount`` given back; 0 when the order had taken nothing."""

    amount: int


DeductOutcome = Deducted | DeductRefused


class RefundAction(StrEnum):
    """What a Refund must do, given the order's payment record."""

    GIVE_BACK = "GIVE_BACK"  # a deduction stands: give it back
    FENCE = "FENCE"  # nothing recorded: write a REFUNDED fence
    DONE = "DONE"  # already refunded or never taken: answer again, change nothing


def replay_deduct(payment: Payment) -> DeductOutcome:
    """The answer to a Deduct for an order already recorded; nothing changes."""
    if payment.status is PaymentStatus.DEDUCTED:
        assert payment.balance_after is not None
        return Deducted(payment.amount, payment.balance_after)
    if payment.status is PaymentStatus.REFUNDED:
        return DeductRefused(ALREADY_COMPENSATED, f"order {payment.order_id} was already refunded")
    return DeductRefused(payment.failure_code or INSUFFICIENT_BALANCE, payment.reason)


def deduct_result(user_id: int, amount: int, balance_before: int | None, balance_after: int | None) -> DeductOutcome:
    """The outcome of the conditional deduction (``balance_after`` is ``None`` when refused)."""
    if balance_before is None:
        return DeductRefused(USER_NOT_FOUND, f"user {user_id} does not exist")
    if balance_after is None:
        return DeductRefused(INSUFFICIENT_BALANCE, insufficient_reason(balance_before, amount))
    return Deducted(amount, balance_after)


def refused(order_id: str, user_id: int, amount: int, outcome: DeductRefused) -> Payment:
    """The record that remembers a refusal, so a re-sent Deduct answers the same."""
    return Payment(order_id, user_id, amount, PaymentStatus.REFUSED, None, outcome.code, outcome.reason)


def refund_action(payment: Payment | None) -> RefundAction:
    """What a Refund does for the order's record."""
    if payment is None:
        return RefundAction.FENCE
    if payment.status is PaymentStatus.DEDUCTED:
        return RefundAction.GIVE_BACK
    return RefundAction.DONE


def refund_replay(payment: Payment) -> Refunded:
    """The answer to a Refund of an order already refunded or refused."""
    return Refunded(payment.amount if payment.status is PaymentStatus.REFUNDED else 0)


def fence(order_id: str) -> Payment:
    """The record a Refund leaves for an order that took nothing: a later Deduct is refused."""
    return Payment(order_id, None, 0, PaymentStatus.REFUNDED)
