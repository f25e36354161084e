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
    """A charge would take the balance over the limit, counting the money held by orders in
    flight (a refund may give it back); nothing was changed."""

    def __init__(self, balance: int | None, amount: int, limit: int, held: int | None = None) -> None:
        shown = f"balance {balance}" if balance is not None else "the balance"
        held_text = f"{held} held by orders in flight" if held is not None else "the money held by orders in flight"
        super().__init__(f"{shown} plus {amount} would exceed the limit of {limit} ({held_text} counts toward it)")
        self.balance = balance
        self.amount = amount
        self.held = held


class IdempotencyKeyReusedError(BalanceError):
    """The Idempotency-Key was already used with a different request body."""

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request")


class PaymentRecordRacedError(BalanceError):
    """Another transaction recorded one of the batch's orders after the batch read them (the
    record's key refused the second insert; nothing was written): apply the batch again."""
