"""Which database errors a consumer may retry: conflicts between concurrent transactions."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg

CONFLICTS: tuple[type[Exception], ...] = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
"""A deadlock or a serialization failure: the transaction lost to another and may run again."""


def is_conflict(exc: BaseException) -> bool:
    """``exc`` is a deadlock or a serialization failure (see :data:`CONFLICTS`)."""
    return isinstance(exc, CONFLICTS)


def unique_violation_on(*constraints: str) -> Callable[[BaseException], bool]:
    """A predicate: ``exc`` violates one of the unique ``constraints`` (by name).

    For "another transaction recorded this key after we read it": the transaction runs again and
    its fresh read sees the record (balance's ``order_payments_pkey``, coupon's ``order_coupons_pkey``).
    """
    names = frozenset(constraints)

    def raced(exc: BaseException) -> bool:
        return isinstance(exc, asyncpg.UniqueViolationError) and exc.constraint_name in names

    return raced


__all__ = ["CONFLICTS", "is_conflict", "unique_violation_on"]
