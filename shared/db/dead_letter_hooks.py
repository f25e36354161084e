"""What a saga participant does when one of its commands is set aside as a dead letter."""

from __future__ import annotations

import asyncpg

from shared.db.dead_letters import DeadLetterHook, Fate
from shared.db.inbox import claim
from shared.db.outbox import enqueue
from shared.events.saga import PROCESSING_FAILED, SagaCommand, SagaFailure
from shared.messaging.envelope import Incoming, Outgoing


def failure_reply_hook(
    inbox: str,
    replies_topic: str,
    forward: dict[type[SagaCommand], type[SagaFailure]],
    unanswered: tuple[type[SagaCommand], ...],
) -> DeadLetterHook:
    """The hook of a saga participant: a set-aside FORWARD command (a key of ``forward``) is
    answered with its failure reply ``forward[type]`` (the participant's normal failure reply,
    code ``PROCESSING_FAILED``) and recorded in the ``inbox`` as processed, so a
    replay or a duplicate cannot apply it behind the failed order's back. A COMPENSATION command
    (``unanswered``) is not answered: nothing was undone, so nothing is reported; its saga stays
    COMPENSATING until the dead letter is replayed (``fate == "compensation"`` is counted)."""

    async def hook(conn: asyncpg.Connection, item: Incoming) -> Fate:
        message = item.message
        failure = forward.get(type(message))  # type: ignore[arg-type]
        if failure is not None and isinstance(message, SagaCommand):
            if not await claim(conn, inbox, item.event_id):
                return "none"  # applied and answered before
            reply = failure(
                order_id=message.order_id,
                command_id=message.event_id,
                code=PROCESSING_FAILED,
                reason="the command could not be processed; it was set aside as a dead letter",
            )
            await enqueue(conn, [Outgoing(replies_topic, message.order_id, reply, item.request_id)])
            return "answered"
        if isinstance(message, unanswered):
            return "compensation"
        return "none"

    return hook
