"""Commands of the ranking context: what the HTTP views and the consumer ask the service layer.

Each is named after its operation (the view's name for a route: ``get_top_products`` ->
:class:`GetTopProducts`, handled by ``service.top_products.get_top_products``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from ranking_service.domain.model import CompletedOrder


@dataclass(frozen=True)
class GetTopProducts:
    """The ``limit`` best-selling products over the last ``days`` calendar days, today included."""

    days: int
    limit: int


@dataclass(frozen=True)
class PostRebuild:
    """Run the daily batch now: catch up missed days, then recompute ``day`` (default: yesterday)."""

    day: date | None = None


@dataclass(frozen=True)
class RecordCompletedOrder:
    """Count ``order`` in the statistics, unless event ``event_id`` or order ``order_id`` already counted."""

    event_id: uuid.UUID
    order_id: str
    order: CompletedOrder
