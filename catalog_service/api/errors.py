"""The single map from catalog errors to HTTP problems."""

from catalog_service.domain.errors import InvalidProductChangeError, ProductNotFoundError
from shared.web.problems import ErrorMap, ProblemSpec

ERROR_MAP: ErrorMap = {
    ProductNotFoundError: ProblemSpec(404, "PRODUCT_NOT_FOUND", "Product not found"),
    InvalidProductChangeError: ProblemSpec(400, "VALIDATION_ERROR", "Invalid request"),
}
