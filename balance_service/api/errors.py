"""The single map from domain errors to HTTP problems."""

from balance_service.domain.errors import (
    BalanceLimitExceededError,
    IdempotencyKeyReusedError,
    UserNotFoundError,
)
from shared.web.problems import ErrorMap, ProblemSpec

ERROR_MAP: ErrorMap = {
    UserNotFoundError: ProblemSpec(404, "USER_NOT_FOUND", "User not found"),
    BalanceLimitExceededError: ProblemSpec(409, "BALANCE_LIMIT_EXCEEDED", "Balance limit exceeded"),
    IdempotencyKeyReusedError: ProblemSpec(409, "IDEMPOTENCY_KEY_REUSED", "Idempotency key reused"),
}
