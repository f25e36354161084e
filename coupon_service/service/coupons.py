"""Creating, reading and issuing coupons (first come, first served)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from coupon_service.db import coupons as repo
from coupon_service.domain.errors import (
    CouponAlreadyIssuedError,
    CouponNotFoundError,
    CouponNotIssuableError,
    CouponSoldOutError,
)
from coupon_service.domain.model import Coupon, CouponTerms
from coupon_service.service.users import KnownUsers
from shared.db.uow import UnitOfWork


@dataclass(frozen=True)
class IssuedCoupon:
    user_coupon_id: int
    coupon_id: int
    user_id: int
    status: str
    issued_at: datetime
    expires_at: datetime


class Coupons:
    """The coupon use cases.

    Two per-instance memos, both safe with several instances because what they remember never
    changes once true in the database: a coupon's terms (immutable after creation) and that a
    coupon is sold out (issued copies are never returned to the pool).
    """

    def __init__(self, pool: asyncpg.Pool, users: KnownUsers) -> None:
        self.pool = self._pool = pool
        self._users = users
        self._terms: dict[int, Coupon] = {}
        self._sold_out: set[int] = set()

    async def create(self, terms: CouponTerms) -> Coupon:
        """Store the coupon with one free slot per copy."""
        terms.validate()
        async with UnitOfWork(self._pool) as uow:
            coupon = await repo.insert_coupon(uow.conn, terms)
            await uow.commit()
        self._terms[coupon.coupon_id] = coupon
        return coupon

    async def find(self, coupon_id: int) -> Coupon:
        coupon = self._terms.get(coupon_id)
        if coupon is None:
            coupon = await repo.get_coupon(self._pool, coupon_id)
            if coupon is None:
                raise CouponNotFoundError(f"coupon {coupon_id} does not exist")
            self._terms[coupon_id] = coupon
        return coupon

    def is_sold_out(self, coupon_id: int) -> bool:
        return coupon_id in self._sold_out

    def mark_sold_out(self, coupon_id: int) -> None:
        """Remember that every copy is taken for good (only ever called when that is true)."""
        self._sold_out.add(coupon_id)

    async def show(self, coupon_id: int) -> tuple[Coupon, int]:
        """The coupon and how many copies are issued."""
        coupon = await self.find(coupon_id)
        return coupon, await repo.issued_count(self._pool, coupon_id)

    async def issue(self, coupon_id: int, user_id: int, now: datetime) -> IssuedCoupon:
        """Give the user one copy, checked in the design's order of outcomes: unknown user, unknown
        coupon, already issued, not issuable, sold out."""
        await self._users.require(user_id)
        coupon = await self.find(coupon_id)
        if coupon.terms.window_status(now) is not None:
            if await repo.holds(self._pool, coupon_id, user_id):
                raise CouponAlreadyIssuedError(f"user {user_id} already holds coupon {coupon_id}")
            raise CouponNotIssuableError(f"coupon {coupon_id} is outside its issue window")
        if coupon_id not in self._sold_out:
            row = await self._claim(coupon, user_id, wait=False) or await self._claim(coupon, user_id, wait=True)
            if row is not None:
                return IssuedCoupon(**dict(row))
            self._sold_out.add(coupon_id)
        if await repo.holds(self._pool, coupon_id, user_id):
            raise CouponAlreadyIssuedError(f"user {user_id} already holds coupon {coupon_id}")
        raise CouponSoldOutError(f"coupon {coupon_id} has no copies left")

    async def _claim(self, coupon: Coupon, user_id: int, *, wait: bool) -> asyncpg.Record | None:
        try:
            return await repo.claim_slot(self._pool, coupon.coupon_id, user_id, coupon.terms.valid_days, wait=wait)
        except asyncpg.UniqueViolationError:
            raise CouponAlreadyIssuedError(f"user {user_id} already holds coupon {coupon.coupon_id}") from None
