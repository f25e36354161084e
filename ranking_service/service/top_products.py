"""``get_top_products``: the top products of the last days, from the daily counters through a cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from ranking_service.domain.commands import GetTopProducts
from ranking_service.domain.model import RankedProduct, Window, day_of, rank
from ranking_service.service.cache import AnswerCache
from ranking_service.service.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True)
class TopProducts:
    window: Window
    generated_at: datetime
    items: list[RankedProduct]
    # the rendered response, filled once by the API layer: a cache hit is served without re-rendering
    rendered: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)


async def get_top_products(
    uow: UnitOfWorkFactory, cache: AnswerCache, clock: Clock, tz: ZoneInfo, cmd: GetTopProducts
) -> TopProducts:
    """The ranking over the window ending today (service time zone); cached per (days, limit, today).

    One statement on a connection without a transaction (single-statement mode).
    """
    now = clock()
    today = day_of(now, tz)
    key = (cmd.days, cmd.limit, today)
    cached: TopProducts | None = cache.get(key)
    if cached is not None:
        return cached
    generation = cache.generation
    window = Window.ending(today, cmd.days)
    async with uow(single_statement=True) as reader:
        lines = await reader.sales.top(window.first, window.last, cmd.limit)
    answer = TopProducts(window, now, rank(lines, cmd.limit))
    cache.put(key, answer, generation)
    return answer
