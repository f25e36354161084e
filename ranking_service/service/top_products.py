"""The top products of the last ``days`` days, answered from the daily counters through a cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ranking_service.db.sales import top_sales
from ranking_service.domain.calendar import Window, day_of
from ranking_service.domain.ranking import RankedProduct, rank
from ranking_service.service.context import Ranking


@dataclass(frozen=True)
class TopProducts:
    window: Window
    generated_at: datetime
    items: list[RankedProduct]
    # the rendered response, filled once by the API layer: a cache hit is served without re-rendering
    rendered: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


async def top_products(ctx: Ranking, days: int, limit: int) -> TopProducts:
    """The ranking over the window ending today (service time zone); cached per (days, limit, today)."""
    now = ctx.clock()
    today = day_of(now, ctx.tz)
    key = (days, limit, today)
    cached = ctx.cache.get(key)
    if cached is not None:
        return cached
    generation = ctx.cache.generation
    window = Window.ending(today, days)
    async with ctx.pool.acquire() as conn:
        lines = await top_sales(conn, window.first, window.last, limit)
    answer = TopProducts(window, now, rank(lines, limit))
    ctx.cache.put(key, answer, generation)
    return answer
