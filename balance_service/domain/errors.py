"""The errors of the balance context; one root, mapped to HTTP problems in ``api.errors``."""

from __future__ import annotations


class BalanceError(Exception):
    """Root of every error of the balance context."""


class UserNotFoundError(BalanceError):
    """No user with this id."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"user {user_id} does not exist")
        self.user_id = user_id


class BalanceLimitExceededError(BalanceError):
    """A charge would take the balance over the limit; nothing was changed."""

    def __init__(self, balance: int | None, amount: int, limit: int) -> None:
        shown = f"balance {balance}" if balance is not None else "the balance"
        super().__init__(f"{shown} plus {amount} would exceed the limit of {limit}")
        self.balance = balance
        self.amount = amount


class IdempotencyKeyReusedError(BalanceError):
    """The Idempotency-Key was already used with a different request body."""

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request")
