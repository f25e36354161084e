"""Use cases: handlers named as their routes, over the ports of ``service.ports``."""

from coupon_service.service import coupons, issuing, saga, user_coupons, users

__all__ = ["coupons", "issuing", "saga", "user_coupons", "users"]
