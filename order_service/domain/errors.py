"""One error root for the order context; ``api.errors`` maps each to a problem document."""


class OrderError(Exception):
    """Root of every order_service business error."""


class UserNotFoundError(OrderError):
    """The user is unknown to the user registry."""


class ProductNotFoundError(OrderError):
    """A product of the order does not exist."""


class ProductNotSellableError(OrderError):
    """A product of the order is discontinued."""


class OrderNotFoundError(OrderError):
    """No order has this id."""


class IdempotencyKeyReusedError(OrderError):
    """The Idempotency-Key was already used with a different request body."""


class UpstreamUnavailableError(OrderError):
    """A service this one depends on (catalog, balance) could not answer."""
