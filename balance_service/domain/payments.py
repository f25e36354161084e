"""The balance step of the payment saga: what a Deduct or Refund does for an order.

The order id is the business key: one payment record per order. A Deduct seen before gets the
same answer again; a Refund gives back once; a Refund that comes first leaves a fence that
refuses a later Deduct.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from balance_service.domain.commands import Deduct, Refund
from balance_service.domain.model import EntryType, can_deduct, insufficient_reason

ALREADY_COMPENSATED = "ALREADY_COMPENSATED"
INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
USER_NOT_FOUND = "USER_NOT_FOUND"


class PaymentStatus(StrEnum):
    DEDUCTED = "DEDUCTED"
    REFUNDED = "REFUNDED"
    REFUSED = "REFUSED"


@dataclass(frozen=True)
class Payment:
    """What the saga did to the balance for one order. ``held``: what of ``amount`` still counts
    toward the user's limit because the order is in flight (a refund may give it back); 0 once the
    order completed or was refunded."""

    order_id: str
    user_id: int | None
    amount: int
    status: PaymentStatus
    balance_after: int | None = None
    failure_code: str | None = None
    reason: str = ""
    held: int = 0


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


SagaCommand = Deduct | Refund
SagaOutcome = DeductOutcome | Refunded


@dataclass(frozen=True)
class HistoryEntry:
    """A balance history row a saga command writes (``USE`` or ``REFUND``, amount > 0)."""

    user_id: int
    type: EntryType
    amount: int
    balance_after: int
    order_id: str


@dataclass(frozen=True)
class Settlement:
    """What a batch of saga commands answers and changes, applied one after the other.

    ``outcomes`` has one entry per command, in order. ``created``: the final record of each order
    that had none before the batch (order-id order); ``updated``: the final record of each order
    whose existing record changed; ``balances``: the new balance of each user a command changed
    (or touched with a deduction of 0); ``held``: for the same users, how much the money held by
    their orders in flight changed (a deduction holds its amount, a refund releases it);
    ``history``: the rows to add, in command order.
    """

    outcomes: list[SagaOutcome]
    created: list[Payment]
    updated: list[Payment]
    balances: dict[int, int]
    history: list[HistoryEntry]
    held: dict[int, int] = field(default_factory=dict)

    @property
    def writes_nothing(self) -> bool:
        return not (self.created or self.updated or self.balances or self.history)


def settle(commands: Sequence[SagaCommand], payments: Mapping[str, Payment], balances: Mapping[int, int]) -> Settlement:
    """Apply ``commands`` in order to the orders' payment records and the users' balances.

    ``payments``: the records of the orders concerned that exist (locked by the caller);
    ``balances``: the balance of every user concerned that exists (locked), i.e. the users of
    the Deducts and of the records. A user missing from ``balances`` does not exist. Each
    command sees what the earlier ones left, exactly as if each ran in its own transaction.
    """
    records: dict[str, Payment] = dict(payments)
    money: dict[int, int] = dict(balances)
    holding: dict[int, int] = {}
    touched: set[int] = set()
    changed: set[str] = set()
    history: list[HistoryEntry] = []
    outcomes: list[SagaOutcome] = []
    for cmd in commands:
        existing = records.get(cmd.order_id)
        if isinstance(cmd, Deduct):
            if existing is not None:
                outcomes.append(replay_deduct(existing))
                continue
            before = money.get(cmd.user_id)
            after = before - cmd.amount if before is not None and can_deduct(before, cmd.amount) else None
            outcome = deduct_result(cmd.user_id, cmd.amount, before, after)
            if isinstance(outcome, Deducted):
                money[cmd.user_id] = outcome.balance_after
                holding[cmd.user_id] = holding.get(cmd.user_id, 0) + cmd.amount
                touched.add(cmd.user_id)
                records[cmd.order_id] = Payment(
                    cmd.order_id,
                    cmd.user_id,
                    cmd.amount,
                    PaymentStatus.DEDUCTED,
                    outcome.balance_after,
                    held=cmd.amount,
                )
                if cmd.amount > 0:
                    history.append(
                        HistoryEntry(cmd.user_id, EntryType.USE, cmd.amount, outcome.balance_after, cmd.order_id)
                    )
            else:
                records[cmd.order_id] = refused(cmd.order_id, cmd.user_id, cmd.amount, outcome)
            changed.add(cmd.order_id)
            outcomes.append(outcome)
            continue
        action = refund_action(existing)
        if action is RefundAction.DONE:
            assert existing is not None
            outcomes.append(refund_replay(existing))
        elif action is RefundAction.FENCE:
            records[cmd.order_id] = fence(cmd.order_id)
            changed.add(cmd.order_id)
            outcomes.append(Refunded(0))
        else:
            assert existing is not None and existing.user_id is not None
            records[cmd.order_id] = replace(existing, status=PaymentStatus.REFUNDED, held=0)
            changed.add(cmd.order_id)
            user = existing.user_id
            if user in money:  # always: a deduction stands only for an existing user
                money[user] += existing.amount
                holding[user] = holding.get(user, 0) - existing.held
                touched.add(user)
                if existing.amount > 0:
                    history.append(HistoryEntry(user, EntryType.REFUND, existing.amount, money[user], cmd.order_id))
            outcomes.append(Refunded(existing.amount))
    return Settlement(
        outcomes=outcomes,
        created=[records[o] for o in sorted(changed) if o not in payments],
        updated=[records[o] for o in sorted(changed) if o in payments and records[o] != payments[o]],
        balances={user: money[user] for user in sorted(touched)},
        history=history,
        held={user: holding.get(user, 0) for user in sorted(touched)},
    )
