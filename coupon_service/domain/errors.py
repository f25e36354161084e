"""Errors of the coupon context; one root, mapped once to HTTP problems in ``api.errors``."""


class CouponError(Exception):
    """Root of every coupon_service error."""


class InvalidCouponError(CouponError):
    """A coupon definition breaks a rule (e.g. RATE outside 1..100)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.problem_members = {"errors": [{"field": field, "message": message}]}


class CouponNotFoundError(CouponError):
    """No coupon with this id."""


class UserNotFoundError(CouponError):
    """The user is unknown to the projection and to balance_service."""


class CouponNotIssuableError(CouponError):
    """The coupon is outside its issue window."""


class CouponAlreadyIssuedError(CouponError):
    """The user already holds this coupon."""


class CouponSoldOutError(CouponError):
    """Every copy has been issued."""


class UserDirectoryUnavailableError(CouponError):
    """balance_service could not be asked whether a user exists."""
