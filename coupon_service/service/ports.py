"""Ports of the service layer: the unit of work with its repositories, and the user directory
(the known-users repository and the directory are the shared projection's: ``shared.known_users``).

The real adapters are in ``coupon_service.db`` and ``shared.clients.balance`` (wired by
``coupon_service.bootstrap``); in-memory ones are in ``tests/coupon_service/fakes.py``. Both
pass the same abstract suite (``tests/coupon_service/test_repositories.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from coupon_service.domain.model import Claimant, Coupon, CouponTerms, IssuedCoupon, OwnedCoupon
from coupon_service.domain.saga import Holding, OrderCoupon
from shared.known_users import KnownUserRepository, UserDirectory
from shared.messaging.envelope import Message
from shared.messaging.pipeline import Inbox


class CouponRepository(Protocol):
    """Coupons and their copies (one row per copy, created with the coupon)."""

    async def add(self, terms: CouponTerms) -> Coupon:
        """Store the coupon with one free copy per unit of ``total_quantity``."""

    async def get(self, coupon_id: int) -> Coupon | None: ...

    async def issued_count(self, coupon_id: int) -> int: ...

    async def claim(self, coupon_id: int, user_id: int, valid_days: int, *, wait: bool) -> IssuedCoupon | None:
        """A free copy for the user, ``None`` when none is free (``wait``: wait for copies locked by
        claims in flight instead of skipping them). A second copy raises ``CouponAlreadyIssuedError``."""

    async def holds(self, coupon_id: int, user_id: int) -> bool: ...

    async def issue_many(self, coupon_id: int, user_ids: list[int], valid_days: int) -> list[Claimant] | None:
        """Copies for distinct users at once (one per user, in arrival order, never waiting for a
        locked copy); ``None`` when it raced another transaction and did nothing."""

    async def who_holds(self, coupon_id: int, user_ids: list[int]) -> list[Claimant]:
        """Per user: known (projection) and holding a copy."""


class UserCouponRepository(Protocol):
    """The coupons users own."""

    async def list_owned(
        self, user_id: int, *, usable_only: bool, after: tuple[datetime, int] | None, limit: int
    ) -> list[OwnedCoupon]:
        """Newest issue first, after the keyset position ``after``."""


class OrderCouponRepository(Protocol):
    """The saga step's record per order, and the user coupons it takes and gives back."""

    async def lock_record(self, order_id: str) -> OrderCoupon | None: ...

    async def insert_record(self, record: OrderCoupon) -> None:
        """A new order's record; fails when another transaction recorded the order meanwhile."""

    async def update_state(self, record: OrderCoupon) -> None: ...

    async def lock_holding(self, user_coupon_id: int) -> Holding | None: ...

    async def mark_taken(self, user_coupon_id: int, order_id: str, now: datetime) -> bool:
        """``USED`` by the order if it was ``AVAILABLE``; whether it was."""

    async def mark_used(self, user_coupon_id: int, order_id: str, now: datetime) -> None: ...

    async def mark_available(self, user_coupon_id: int, order_id: str) -> None: ...


class UnitOfWork(Protocol):
    """``async with uow_factory() as uow: ...; await uow.commit()``: repositories on one connection.

    The transactional kind rolls back unless committed; the single-statement kind (hot paths:
    no ``BEGIN``/``COMMIT`` round trips) runs each statement on its own and ``commit`` does nothing.
    """

    @property
    def coupons(self) -> CouponRepository: ...

    @property
    def user_coupons(self) -> UserCouponRepository: ...

    @property
    def orders(self) -> OrderCouponRepository: ...

    @property
    def users(self) -> KnownUserRepository: ...

    @property
    def inbox(self) -> Inbox:
        """The consumer inbox on this unit of work (claimed by the consumer pipeline)."""

    def publish(self, topic: str, key: str | int, message: Message, request_id: str | None = None) -> None: ...

    async def commit(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


__all__ = [
    "CouponRepository",
    "KnownUserRepository",
    "OrderCouponRepository",
    "UnitOfWork",
    "UnitOfWorkFactory",
    "UserCouponRepository",
    "UserDirectory",
]
