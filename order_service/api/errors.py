"""The single map from order errors to problem documents."""

from order_service.domain import errors
from shared.web.problems import ProblemSpec

ERROR_MAP: dict[type[Exception], ProblemSpec] = {
    errors.UserNotFoundError: ProblemSpec(404, "USER_NOT_FOUND", "User not found"),
    errors.ProductNotFoundError: ProblemSpec(404, "PRODUCT_NOT_FOUND", "Product not found"),
    errors.ProductNotSellableError: ProblemSpec(409, "PRODUCT_NOT_SELLABLE", "Product not sellable"),
    errors.OrderNotFoundError: ProblemSpec(404, "ORDER_NOT_FOUND", "Order not found"),
    errors.IdempotencyKeyReusedError: ProblemSpec(409, "IDEMPOTENCY_KEY_REUSED", "Idempotency key reused"),
    errors.UpstreamUnavailableError: ProblemSpec(503, "SERVICE_UNAVAILABLE", "Service unavailable"),
}
