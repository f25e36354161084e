"""The one map from coupon errors to HTTP problems."""

from coupon_service.domain.errors import (
    CouponAlreadyIssuedError,
    CouponNotFoundError,
    CouponNotIssuableError,
    CouponSoldOutError,
    InvalidCouponError,
    UserDirectoryUnavailableError,
    UserNotFoundError,
)
from shared.web.problems import ErrorMap, ProblemSpec

ERROR_MAP: ErrorMap = {
    InvalidCouponError: ProblemSpec(400, "VALIDATION_ERROR", "Invalid request"),
    CouponNotFoundError: ProblemSpec(404, "COUPON_NOT_FOUND", "Coupon not found"),
    UserNotFoundError: ProblemSpec(404, "USER_NOT_FOUND", "User not found"),
    CouponNotIssuableError: ProblemSpec(409, "COUPON_NOT_ISSUABLE", "Coupon not issuable"),
    CouponAlreadyIssuedError: ProblemSpec(409, "COUPON_ALREADY_ISSUED", "Coupon already issued"),
    CouponSoldOutError: ProblemSpec(409, "COUPON_SOLD_OUT", "Coupon sold out"),
    UserDirectoryUnavailableError: ProblemSpec(503, "SERVICE_UNAVAILABLE", "User lookup unavailable"),
}
