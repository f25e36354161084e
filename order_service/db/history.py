"""The saga history's INSERT, a CTE of the statements that save sagas (orders and saga batches)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from order_service.domain.history import Entry
from shared.db.retention import RetentionRule

SAGA_HISTORY = RetentionRule(
    "saga_history",
    "at",
    unless="EXISTS (SELECT 1 FROM sagas s WHERE s.order_id = saga_history.order_id"
    " AND s.step NOT IN ('DONE', 'FAILED'))",
)
"""Saga history rows older than ``saga_history_retention_hours`` are purged once their saga has
finished; an unfinished saga (one stuck ``COMPENSATING`` behind a dead letter, say) keeps its whole
history, which is what an operator reads to finish it. The order and its saga's current state stay
(``orders``, ``sagas``)."""


def history_sql(first: int, at: str, where: str = "") -> str:
    """The saga_history INSERT reading four arrays from ``$first`` (see :func:`history_args`), all
    rows at ``at``; a CTE of the statement that saves the sagas, so the history costs no round trip."""
    return (
        "INSERT INTO saga_history (order_id, at, kind, name, detail)"
        f" SELECT ho, {at}, hk, hn, hd::jsonb FROM unnest(${first}::uuid[], ${first + 1}::text[],"
        f" ${first + 2}::text[], ${first + 3}::text[]) WITH ORDINALITY AS h(ho, hk, hn, hd, hi) {where} ORDER BY hi"
    )


def history_args(entries: Sequence[Entry]) -> tuple[list[Any], ...]:
    return (
        [e.order_id for e in entries],
        [e.kind for e in entries],
        [e.name for e in entries],
        [orjson.dumps(e.detail).decode() for e in entries],
    )
