"""Schemas of every message the services exchange, one module per producing context.

``users``: user registry events (balance_service). ``orders``: the public ``order.completed`` /
``order.failed`` events (order_service). ``saga``: the payment saga's commands (order_service)
and replies (balance, catalog and coupon services).
"""

from shared.events import orders, saga, users
from shared.messaging.envelope import Message, MessageRegistry

ALL_MESSAGES: tuple[type[Message], ...] = (
    *users.MESSAGES,
    *orders.MESSAGES,
    *saga.COMMANDS,
    *saga.REPLIES,
)
REGISTRY = MessageRegistry(ALL_MESSAGES)
"""Decodes any message of the system by its ``event-type`` header."""
