"""Commands of the balance context (what HTTP views and saga consumers ask the service layer)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RegisterUser:
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
    order_id: str
    user_id: int
    amount: int


@dataclass(frozen=True)
class Refund:
    order_id: str
