"""Kafka consumers: saga replies (group ``order-saga``) and ``user.registered`` (``order-users``).

Each consumed batch applies in one transaction through the platform's pipeline
(``shared.messaging.pipeline``): the records become what the service layer's handler takes, and
the offsets are committed after the database.
"""

from __future__ import annotations

from order_service.service import saga_runner
from order_service.service.deps import Deps
from order_service.service.ports import UnitOfWork
from shared.events.saga import SagaReply
from shared.known_users import users_handler as known_users_handler
from shared.messaging.envelope import Incoming
from shared.messaging.pipeline import BatchHandler, Pipeline

USERS_CONSUMER = "order-users"
REPLY_ATTEMPTS = 5


def replies_handler(deps: Deps) -> BatchHandler:
    """A batch of replies in one transaction (BEGIN, the inbox claim fused with the lock of the
    sagas, one write, COMMIT), retried whole on a deadlock or serialization failure; the flow
    metrics are recorded after the commit."""
    pipeline = Pipeline(deps.uow, saga_runner.CONSUMER, on_conflict="retry", attempts=REPLY_ATTEMPTS)

    async def apply(uow: UnitOfWork, batch: list[Incoming]) -> saga_runner.Applied | None:
        replies = [(item.event_id, item.message if isinstance(item.message, SagaReply) else None) for item in batch]
        return await saga_runner.apply_replies(deps, uow, replies)

    async def handle(batch: list[Incoming]) -> None:
        for applied in await pipeline.apply_batch(batch, apply, claim=False):
            if applied is not None:
                applied.record(deps)

    return handle


def users_handler(deps: Deps) -> BatchHandler:
    """``user.registered`` into the known users (the shared projection): the pipeline's inbox, then
    one statement for the batch's new users."""
    return known_users_handler(deps.uow, USERS_CONSUMER)
