"""Response and query models of the admin saga view (API.md "Operations"; also the OpenAPI schemas)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from order_service.api.schemas import ORDERS
from shared.messaging.envelope import rfc3339

UnfinishedStep = Literal[
    "RESERVING_COUPON", "DEDUCTING_BALANCE", "DEDUCTING_STOCK", "COMPENSATING", "CONFIRMING_COUPON"
]
"""The steps not in ``domain.saga.TERMINAL``, in ``Step``'s order (a test keeps them so)."""
Kind = Literal["command", "compensation", "reply", "timeout", "outcome"]
"""``domain.history.KINDS`` (a test keeps them so)."""


class SagaHistoryItem(BaseModel):
    """One thing that happened to the saga. ``kind``: ``command`` (a forward command sent, each
    re-send too), ``compensation`` (an undoing command sent), ``reply`` (received; ``detail.ignored``
    true when it changed nothing: late, duplicate or for another step), ``timeout`` (the step's
    deadline passed), ``outcome`` (the order's final status decided). ``name``: the command or
    reply type, the timed-out step, or the status. ``detail``: the message's fields (with
    ``step`` and ``attempt`` for what was sent), or the timed-out step and its attempts, or the
    failure code."""

    at: str
    kind: Kind
    name: str
    detail: dict[str, Any]


class SagaSummary(BaseModel):
    """A saga: the order's ``status``, the saga's ``step`` (DONE and FAILED are finished; an order
    can be COMPLETED while the saga still confirms its coupon), how many sends of the current step
    the broker acknowledged (``attempts``), when it times out (``deadline``, null when nothing is
    awaited or while its command still waits for the broker) and when it started (``started_at``,
    the order's creation)."""

    order_id: str
    status: Literal["PENDING", "COMPLETED", "FAILED"]
    step: str
    attempts: int
    deadline: str | None
    started_at: str

    @classmethod
    def of(cls, row: Any) -> SagaSummary:
        return cls(**_summary(row))


class SagaOut(SagaSummary):
    """An order's saga with its history, oldest first."""

    history: list[SagaHistoryItem]

    @classmethod
    def with_history(cls, row: Any, history: Iterable[Any]) -> SagaOut:
        items = [
            SagaHistoryItem(at=rfc3339(h["at"]), kind=h["kind"], name=h["name"], detail=h["detail"]) for h in history
        ]
        return cls(**_summary(row), history=items)


def _summary(row: Any) -> dict[str, Any]:
    return {
        "order_id": str(row["order_id"]),
        "status": row["status"],
        "step": row["step"],
        "attempts": row["attempts"],
        "deadline": rfc3339(row["deadline"]) if row["deadline"] else None,
        "started_at": rfc3339(row["started_at"]),
    }


class SagaPage(BaseModel):
    """A page of unfinished sagas, oldest first; ``next_cursor`` is null on the last page."""

    items: list[SagaSummary]
    next_cursor: str | None


class SagaQuery(BaseModel):
    """``step``: only sagas in that step; ``older_than_s``: only sagas started more than that many
    seconds ago (stuck ones); ``limit`` 1..100 (default 20); ``cursor`` from the previous page."""

    step: UnfinishedStep | None = None
    older_than_s: Annotated[int, Field(ge=0, le=10 * 365 * 86400)] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: str | None = Field(default=None, pattern=ORDERS.pattern, description="next_cursor of the previous page")
