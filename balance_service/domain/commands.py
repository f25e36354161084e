"""Commands of the balance context (what HTTP views and saga consumers ask the service layer)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CreateUser:
    """Register a user (``POST /users``), with a balance of 0."""

    name: str


@dataclass(frozen=True)
class Charge:
    """Add ``amount`` to the user's balance; ``fingerprint`` identifies the request body."""

    user_id: int
    amount: int
    idempotency_key: str | None = None

    @property
    def fingerprint(self) -> str:
        return f"charge:{self.amount}"


@dataclass(frozen=True)
class Deduct:
    """The saga takes an order's amount from the user's balance (at most once per order)."""

    order_id: str
    user_id: int
    amount: int


@dataclass(frozen=True)
class Refund:
    """The saga gives back what the order took (once), or fences an order that took nothing."""

    order_id: str


@dataclass(frozen=True)
class ReleaseHeld:
    """These orders completed: the money they took stops counting toward the limit as held."""

    order_ids: tuple[str, ...]
