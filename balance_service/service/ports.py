"""What the handlers need from the outside world: repositories and the unit of work that carries them.

The PostgreSQL adapters are in ``balance_service.db``; in-memory ones in ``tests/balance_service/fakes.py``.
Both pass the same abstract suite (``tests/balance_service/test_repositories.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Protocol, Self

from balance_service.domain.model import Balance, ChargeResult, HistoryRecord, StoredKey, User
from balance_service.domain.payments import Payment, Settlement
from shared.messaging.envelope import Message, Outgoing
from shared.messaging.pipeline import Inbox


class UsersRepository(Protocol):
    async def add(self, name: str) -> User:
        """Insert the user and their balance row (at 0) at once."""

    async def get(self, user_id: int) -> User | None: ...


class BalancesRepository(Protocol):
    """Every change is one conditional statement: the limit is checked on the latest row."""

    async def charge(self, user_id: int, amount: int, limit: int) -> ChargeResult: ...

    async def charge_once(
        self, user_id: int, amount: int, limit: int, key: str, fingerprint: str
    ) -> ChargeResult | None:
        """:meth:`charge` recording ``key`` with its outcome, at once; ``None`` (nothing done)
        when the key was recorded before."""

    async def charge_many(self, charges: Sequence[tuple[int, int]], limit: int) -> dict[int, ChargeResult | None]:
        """Charge ``(user_id, amount)`` pairs of distinct users at once, never waiting for a row
        lock: ``None`` for a user whose row is locked elsewhere or who does not exist (charge it
        alone)."""

    async def get(self, user_id: int) -> Balance | None: ...

    async def history(self, user_id: int, before_id: int, limit: int) -> list[HistoryRecord]:
        """Rows with ``id < before_id``, newest first."""

    async def user_exists(self, user_id: int) -> bool: ...


class IdempotencyKeysRepository(Protocol):
    async def stored(self, user_id: int, key: str) -> StoredKey | None: ...

    async def delete_older_than(self, hours: float) -> int:
        """Forget keys older than ``hours``; how many went."""


class PaymentsRepository(Protocol):
    """The saga's per-order payment records, locked and written a batch at a time."""

    async def claim_and_lock(
        self, consumer: str, message_ids: Iterable[uuid.UUID], order_ids: Iterable[str], user_ids: Iterable[int]
    ) -> tuple[set[uuid.UUID], dict[str, Payment], dict[int, int]]:
        """Claim ``message_ids`` in ``consumer``'s inbox, then lock and read the records of
        ``order_ids`` and the balances of ``user_ids`` and of the records' users: the new message
        ids, the records that exist, the balances of the users that exist. One round trip."""

    async def write(self, settlement: Settlement, messages: Sequence[Outgoing]) -> None:
        """Write what ``settlement`` changes with ``messages`` for the outbox (one statement);
        :class:`~balance_service.domain.errors.PaymentRecordRacedError` when a record it creates
        was written meanwhile by another transaction."""

    async def release_held(self, order_ids: Sequence[str]) -> int:
        """Stop holding what the completed orders took (idempotent); how many users it concerned."""


class UnitOfWork(Protocol):
    """``async with uow: ...; await uow.commit()``: rolls back unless committed. In single-statement
    mode (the hot paths) there is no transaction: each statement commits alone, ``commit`` does
    nothing and ``publish`` is refused."""

    @property
    def users(self) -> UsersRepository: ...
    @property
    def balances(self) -> BalancesRepository: ...
    @property
    def keys(self) -> IdempotencyKeysRepository: ...
    @property
    def payments(self) -> PaymentsRepository: ...
    @property
    def inbox(self) -> Inbox:
        """The consumer inbox on this unit's connection (what ``shared.messaging.pipeline`` claims
        through; the saga's batch claims inside ``payments.claim_and_lock`` instead)."""

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None:
        """Queue ``message`` for ``topic``: written to the outbox by :meth:`commit`."""

    async def commit(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Opens units of work: a transaction, or ``single_statement=True`` for one lone statement
    (PostgreSQL runs it atomically on its own; no ``BEGIN``/``COMMIT`` round trips)."""

    def __call__(self, *, single_statement: bool = False) -> UnitOfWork: ...
