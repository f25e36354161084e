"""Topic names. A per-deployment prefix (empty by default) lets test runs share one broker."""

from __future__ import annotations

USER_REGISTERED = "user.registered"
ORDER_COMPLETED = "order.completed"
ORDER_FAILED = "order.failed"
COUPON_COMMANDS = "saga.coupon.commands"
BALANCE_COMMANDS = "saga.balance.commands"
STOCK_COMMANDS = "saga.stock.commands"
SAGA_REPLIES = "saga.replies"
DEAD_LETTER = "dead-letter"

ALL = (
    USER_REGISTERED,
    ORDER_COMPLETED,
    ORDER_FAILED,
    COUPON_COMMANDS,
    BALANCE_COMMANDS,
    STOCK_COMMANDS,
    SAGA_REPLIES,
    DEAD_LETTER,
)
DEFAULT_PARTITIONS = 8


class Topics:
    """Resolves a base topic name to the deployment's real name."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def __call__(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def base(self, real_name: str) -> str:
        """The base name of a real topic name."""
        return real_name.removeprefix(self.prefix)
