"""Issuing in batches: concurrent issue requests share one SQL statement per coupon
(:class:`shared.batching.Batcher`), with the same outcomes, in the same order, as
:func:`coupon_service.service.coupons.issue_alone` gives one by one.

What a batch cannot settle without waiting or without asking balance_service is answered ``None``
and the request then takes the one-by-one path itself (outside the flush), so a flush never waits
for a row lock and never makes an HTTP call:

- an id the ``known_users`` table does not hold (the one-by-one path asks balance, maybe 404);
- a fresh user left without a copy while free rows remain that the batch could not take (locked by
  claims in flight): the one-by-one path waits for them and says "sold out" only when true;
- a user whose request for the same coupon is in another flush running now (the two statements
  would meet on the unique index, and one of them would fail as a whole);
- every user of a batch whose statement hit the unique index (the same user's copy committed by
  another transaction meanwhile, e.g. on another instance: nothing of that statement was done).
"""

from __future__ import annotations

from coupon_service.domain.commands import IssueCoupon
from coupon_service.domain.errors import CouponAlreadyIssuedError, CouponNotFoundError, CouponSoldOutError
from coupon_service.domain.model import Claimant, Coupon, IssuedCoupon
from coupon_service.service.coupons import Coupons, issue_alone
from shared.batching import Batcher

Outcome = IssuedCoupon | BaseException | None
"""A copy, the error to raise, or ``None``: go one by one."""


def _already(coupon_id: int, user_id: int) -> CouponAlreadyIssuedError:
    return CouponAlreadyIssuedError(f"user {user_id} already holds coupon {coupon_id}")


def _sold_out(coupon_id: int) -> CouponSoldOutError:
    return CouponSoldOutError(f"coupon {coupon_id} has no copies left")


class Issuer:
    """``issue_coupon`` as :func:`issue_alone`, with concurrent requests batched."""

    def __init__(self, coupons: Coupons, *, max_batch: int = 256, max_flushes: int = 2) -> None:
        self._coupons = coupons
        self.batcher: Batcher[tuple[Coupon, int], IssuedCoupon | None] = Batcher(
            self._flush, max_batch=max_batch, max_flushes=max_flushes
        )
        self._in_flight: set[tuple[int, int]] = set()  # (coupon_id, user_id) in a running flush
        self.alone = 0
        """Requests that went the one-by-one path (outside the window or not settled by a batch)."""

    async def issue(self, cmd: IssueCoupon) -> IssuedCoupon:
        coupon: Coupon | None
        try:
            coupon = await self._coupons.find(cmd.coupon_id)
        except CouponNotFoundError:
            coupon = None  # USER_NOT_FOUND goes first: the one-by-one path asks about the user
        if coupon is not None and coupon.terms.window_status(cmd.now) is None:
            issued = await self.batcher.submit((coupon, cmd.user_id))
            if issued is not None:
                return issued
        # unknown coupon or outside the window (the user, then "already issued", are checked
        # first), or not settled by the batch
        self.alone += 1
        return await issue_alone(self._coupons, cmd)

    async def _flush(self, items: list[tuple[Coupon, int]]) -> list[Outcome]:
        by_coupon: dict[int, list[int]] = {}
        for n, (coupon, _) in enumerate(items):
            by_coupon.setdefault(coupon.coupon_id, []).append(n)
        results: list[Outcome] = [None] * len(items)
        for indexes in by_coupon.values():
            coupon = items[indexes[0]][0]
            user_ids = list(dict.fromkeys(items[n][1] for n in indexes))  # distinct, in arrival order
            if self._coupons.is_sold_out(coupon.coupon_id):
                outcomes = await self._answer_sold_out(coupon, user_ids)
            else:
                outcomes = await self._claim(coupon, user_ids)
            seen: set[int] = set()
            for n in indexes:
                user_id = items[n][1]
                results[n] = outcomes[user_id] if user_id not in seen else _repeat(coupon, user_id, outcomes[user_id])
                seen.add(user_id)
        return results

    async def _claim(self, coupon: Coupon, user_ids: list[int]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = dict.fromkeys(user_ids)
        mine = [(coupon.coupon_id, u) for u in user_ids if (coupon.coupon_id, u) not in self._in_flight]
        if not mine:
            return outcomes
        self._in_flight.update(mine)
        try:
            async with self._coupons.single() as uow:
                claimants = await uow.coupons.issue_many(
                    coupon.coupon_id, [u for _, u in mine], coupon.terms.valid_days
                )
        finally:
            self._in_flight.difference_update(mine)
        if claimants is None:
            return outcomes  # raced another transaction: nothing was issued, every user goes alone
        self._coupons.users.remember([c.user_id for c in claimants if c.known])
        for claimant in claimants:
            outcomes[claimant.user_id] = self._outcome(coupon, claimant)
        return outcomes

    def _outcome(self, coupon: Coupon, claimant: Claimant) -> Outcome:
        if not claimant.known:
            return None
        if claimant.held:
            return _already(coupon.coupon_id, claimant.user_id)
        if claimant.copy is not None:
            return claimant.copy
        if claimant.more_free:
            return None  # copies may be in flight elsewhere: wait for them alone
        self._coupons.mark_sold_out(coupon.coupon_id)
        return _sold_out(coupon.coupon_id)

    async def _answer_sold_out(self, coupon: Coupon, user_ids: list[int]) -> dict[int, Outcome]:
        async with self._coupons.single() as uow:
            claimants = await uow.coupons.who_holds(coupon.coupon_id, user_ids)
        self._coupons.users.remember([c.user_id for c in claimants if c.known])
        return {
            c.user_id: None
            if not c.known
            else _already(coupon.coupon_id, c.user_id)
            if c.held
            else _sold_out(coupon.coupon_id)
            for c in claimants
        }


async def issue_coupon(issuer: Issuer, cmd: IssueCoupon) -> IssuedCoupon:
    """One copy of the coupon for the user (``POST /coupons/{id}/issue``): batched with concurrent
    requests when the coupon is open, one by one otherwise or when a batch cannot settle it."""
    return await issuer.issue(cmd)


def _repeat(coupon: Coupon, user_id: int, first: Outcome) -> Outcome:
    """A user's second request in one batch, once the first is settled (and committed)."""
    if first is None:
        return None
    if isinstance(first, CouponSoldOutError):
        return _sold_out(coupon.coupon_id)
    return _already(coupon.coupon_id, user_id)  # the first got the copy or already held one
