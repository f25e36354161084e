"""Creating, reading and issuing coupons one by one (first come, first served).

Handlers named as their routes: ``create_coupon``, ``get_coupon``; ``issue_alone`` is the
one-by-one path of ``issue_coupon`` (``service/issuing.py``).
"""

from __future__ import annotations

from coupon_service.domain.commands import CreateCoupon, GetCoupon, IssueCoupon
from coupon_service.domain.errors import (
    CouponAlreadyIssuedError,
    CouponNotFoundError,
    CouponNotIssuableError,
    CouponSoldOutError,
)
from coupon_service.domain.model import Coupon, IssuedCoupon
from coupon_service.service.ports import UnitOfWork, UnitOfWorkFactory
from coupon_service.service.users import KnownUsers, require_user


class Coupons:
    """What the coupon use cases share: the units of work, the known users and two memos.

    Both memos are safe with several instances because what they remember never changes once
    true in the database: a coupon's terms (immutable after creation) and that a coupon is sold
    out (issued copies are never returned to the pool).
    """

    def __init__(self, uow: UnitOfWorkFactory, single: UnitOfWorkFactory, users: KnownUsers) -> None:
        self.uow = uow
        self.single = single
        self.users = users
        self._terms: dict[int, Coupon] = {}
        self._sold_out: set[int] = set()

    def remember(self, coupon: Coupon) -> None:
        self._terms[coupon.coupon_id] = coupon

    async def find(self, coupon_id: int, uow: UnitOfWork | None = None) -> Coupon:
        """The coupon (memo first: no connection taken), or :class:`CouponNotFoundError`."""
        coupon = self._terms.get(coupon_id)
        if coupon is None:
            if uow is None:
                async with self.single() as own:
                    coupon = await own.coupons.get(coupon_id)
            else:
                coupon = await uow.coupons.get(coupon_id)
            if coupon is None:
                raise CouponNotFoundError(f"coupon {coupon_id} does not exist")
            self._terms[coupon_id] = coupon
        return coupon

    def is_sold_out(self, coupon_id: int) -> bool:
        return coupon_id in self._sold_out

    def mark_sold_out(self, coupon_id: int) -> None:
        """Remember that every copy is taken for good (only ever called when that is true)."""
        self._sold_out.add(coupon_id)


async def create_coupon(coupons: Coupons, cmd: CreateCoupon) -> Coupon:
    """Store the coupon with one free slot per copy (one transaction)."""
    cmd.terms.validate()
    async with coupons.uow() as uow:
        coupon = await uow.coupons.add(cmd.terms)
        await uow.commit()
    coupons.remember(coupon)
    return coupon


async def get_coupon(coupons: Coupons, cmd: GetCoupon) -> tuple[Coupon, int]:
    """The coupon and how many copies are issued."""
    async with coupons.single() as uow:
        coupon = await coupons.find(cmd.coupon_id, uow)
        return coupon, await uow.coupons.issued_count(cmd.coupon_id)


def _already(coupon_id: int, user_id: int) -> CouponAlreadyIssuedError:
    return CouponAlreadyIssuedError(f"user {user_id} already holds coupon {coupon_id}")


async def issue_alone(coupons: Coupons, cmd: IssueCoupon) -> IssuedCoupon:
    """Give the user one copy, checked in the design's order of outcomes: unknown user, unknown
    coupon, already issued, not issuable, sold out."""
    await require_user(coupons.users, cmd.user_id)
    coupon_id, user_id = cmd.coupon_id, cmd.user_id
    async with coupons.single() as uow:
        coupon = await coupons.find(coupon_id, uow)
        if coupon.terms.window_status(cmd.now) is not None:
            if await uow.coupons.holds(coupon_id, user_id):
                raise _already(coupon_id, user_id)
            raise CouponNotIssuableError(f"coupon {coupon_id} is outside its issue window")
        if not coupons.is_sold_out(coupon_id):
            days = coupon.terms.valid_days
            issued = await uow.coupons.claim(coupon_id, user_id, days, wait=False) or await uow.coupons.claim(
                coupon_id, user_id, days, wait=True
            )
            if issued is not None:
                return issued
            coupons.mark_sold_out(coupon_id)
        if await uow.coupons.holds(coupon_id, user_id):
            raise _already(coupon_id, user_id)
    raise CouponSoldOutError(f"coupon {coupon_id} has no copies left")
