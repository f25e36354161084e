"""Balance rules: the limit, sufficiency, and reading the outcome of an atomic change.

The database applies a change with one conditional statement (the rule is its WHERE clause, so
concurrent changes never race); these functions state the rule and turn the statement's result
into the business outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from balance_service.domain.errors import BalanceLimitExceededError, UserNotFoundError

MAX_BALANCE = 10_000_000
"""A charge may not take a balance above this (KRW)."""
MIN_CHARGE = 1
MAX_CHARGE = MAX_BALANCE


class EntryType(StrEnum):
    """Kinds of balance history rows."""

    CHARGE = "CHARGE"
    USE = "USE"
    REFUND = "REFUND"


@dataclass(frozen=True)
class User:
    user_id: int
    name: str
    created_at: datetime


@dataclass(frozen=True)
class Balance:
    """A user's balance as read (``held`` is not shown to clients)."""

    user_id: int
    balance: int
    updated_at: datetime


@dataclass(frozen=True)
class HistoryRecord:
    """A row of a user's balance history as read."""

    id: int
    type: str
    amount: int
    balance_after: int
    order_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class StoredKey:
    """An Idempotency-Key recorded with its charge: the body's fingerprint and the raw outcome
    (``{"before", "after", "held"}``; keys stored before ``held`` existed lack it)."""

    fingerprint: str
    outcome: dict[str, int | None]


ChargeResult = tuple[int | None, int | None, int | None]
"""The raw outcome of the conditional charge statement, ``(balance_before, balance_after, held)``:
after is ``None`` when nothing changed; before and held are ``None`` for an unknown user
(:func:`charge_result` reads it)."""


def can_charge(balance: int, amount: int, limit: int = MAX_BALANCE, held: int = 0) -> bool:
    """A charge is allowed when it is positive and the balance after it, plus the money ``held`` by
    orders in flight (which a refund may give back), stays within the limit: so a refund, which is
    never refused, can never take the balance over it either."""
    return amount >= MIN_CHARGE and balance + held + amount <= limit


def can_deduct(balance: int, amount: int) -> bool:
    """A deduction is allowed when the balance covers it (a balance never goes negative)."""
    return 0 <= amount <= balance


def charge_result(
    user_id: int, amount: int, balance_before: int | None, balance_after: int | None, held: int | None = None
) -> int:
    """The new balance of a charge, or why it was refused.

    ``balance_before`` is ``None`` when the user does not exist; ``balance_after`` is ``None``
    when the conditional update changed nothing; ``held``: the money held by orders in flight as
    the statement read it (``None`` when unknown). The values are shown in the refusal when they
    explain it (a racing change may have been what tipped it over).
    """
    if balance_before is None:
        raise UserNotFoundError(user_id)
    if balance_after is None:
        explains = not can_charge(balance_before, amount, held=held or 0)
        raise BalanceLimitExceededError(
            balance_before if explains else None, amount, MAX_BALANCE, held if explains else None
        )
    return balance_after


def insufficient_reason(balance_before: int | None, amount: int) -> str:
    """The human text of an insufficient balance."""
    if balance_before is not None and not can_deduct(balance_before, amount):
        return f"balance {balance_before} is less than the amount due {amount}"
    return f"the balance is less than the amount due {amount}"
