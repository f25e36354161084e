"""Transient or deterministic: what a consumer does with a handler's exception.

A *transient* failure (the database or the broker unreachable, a lost connection, a closed pool,
a serialization failure, a deadlock, a timeout) says nothing about the record: the same record
succeeds once the cause goes away, so it is retried without limit and never set aside. Anything
else is *deterministic* (a data or integrity error, a validation or domain error, a bug): the
same record fails again whatever the timing, so after a bounded number of tries it is set aside
as a dead letter and the partition goes on.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import asyncpg
import asyncpg.exceptions._base as asyncpg_base
from aiokafka.errors import KafkaError

FailureKind = Literal["transient", "deterministic"]

_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError and friends
    TimeoutError,
    asyncio.TimeoutError,
    KafkaError,
    asyncpg.InterfaceError,  # connection closed, pool closed, connection lost mid-query
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.QueryCanceledError,  # statement timeout
    asyncpg.InsufficientResourcesError,  # SQLSTATE class 53: out of memory, disk full
)


_DETERMINISTIC: tuple[type[BaseException], ...] = (
    # asyncpg's client-side errors about the query's input or setup are InterfaceErrors too, but
    # say nothing about the connection: "invalid input for query argument $1 (value out of int64
    # range)" fails again on every try.
    asyncpg_base.DataError,
    asyncpg_base.ClientConfigurationError,
    asyncpg_base.UnsupportedClientFeatureError,
    asyncpg_base.UnsupportedServerFeatureError,
)


def classify(exc: BaseException) -> FailureKind:
    """``transient`` when ``exc`` (or its explicit ``raise ... from`` cause) is about the environment,
    not the record. The implicit ``__context__`` is not followed: a data error raised while a
    deadlock was being handled is still a data error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _DETERMINISTIC):
            return "deterministic"
        if isinstance(current, _TRANSIENT):
            return "transient"
        seen.add(id(current))
        current = current.__cause__
    return "deterministic"


def describe(exc: BaseException) -> str:
    """``ExceptionName: message``, bounded, for logs and the dead-letter store."""
    return f"{type(exc).__name__}: {exc}"[:2000]
