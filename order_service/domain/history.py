"""The saga's history as the saga view shows it (API.md "Operations"), derived from transitions.

Pure: the runner turns each applied event and its decision into entries and writes them in the
statement that saves the saga, so keeping the history costs no round trip. Kinds:
``command`` (a forward command sent, re-sends included), ``compensation`` (an undoing command
sent), ``reply`` (a reply received; ``detail.ignored`` when it changed nothing: late, duplicate or
for another step), ``timeout`` (the step's deadline passed) and ``outcome`` (the order's final
status was decided).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from order_service.domain.saga import Comp, Decision, Event, SagaState, Timeout

COMMAND, COMPENSATION, REPLY, TIMEOUT, OUTCOME = "command", "compensation", "reply", "timeout", "outcome"
KINDS = (COMMAND, COMPENSATION, REPLY, TIMEOUT, OUTCOME)
_COMPENSATIONS = frozenset(str(c) for c in Comp)
_ENVELOPE = {"order_id", "occurred_at"}


@dataclass(frozen=True)
class Entry:
    """One line of a saga's history (its time is the transaction's)."""

    order_id: str
    kind: str
    name: str
    detail: dict[str, Any] = field(default_factory=dict)


def sent(decision: Decision) -> list[Entry]:
    """The commands a decision sends and the outcome it decides, in that order."""
    state = decision.state
    entries = []
    for _topic, command in decision.commands:
        kind = COMPENSATION if command.event_type in _COMPENSATIONS else COMMAND
        detail = command.model_dump(mode="json", exclude=_ENVELOPE)
        # the send's number: attempts counts the sends the broker acknowledged, this one not yet
        detail.update(step=str(state.step), attempt=state.attempts + 1)
        entries.append(Entry(state.order_id, kind, command.event_type, detail))
    if decision.outcome is not None:
        entries.append(
            Entry(state.order_id, OUTCOME, decision.outcome.status, {"failure_code": decision.outcome.failure_code})
        )
    return entries


def applied(before: SagaState, event: Event, decision: Decision) -> list[Entry]:
    """What one event did to a saga: the event itself, then what it sent and decided.

    A timeout that found the saga moved on (stale) leaves no trace; a reply always does.
    """
    changed = decision.state != before or bool(decision.commands)
    if isinstance(event, Timeout):
        if not changed:
            return []
        head = Entry(
            before.order_id, TIMEOUT, str(before.step), {"step": str(before.step), "attempts": before.attempts}
        )
    else:
        detail = event.model_dump(mode="json", exclude=_ENVELOPE)
        if not changed:
            detail["ignored"] = True
        head = Entry(before.order_id, REPLY, event.event_type, detail)
    return [head, *sent(decision)]
