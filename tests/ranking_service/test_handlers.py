"""The use cases on the in-memory adapters (no IO): top products, the batch, counting orders."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ranking_service.bootstrap import Deps
from ranking_service.domain.commands import GetTopProducts, PostRebuild, RecordCompletedOrder
from ranking_service.domain.errors import InvalidRebuildDayError
from ranking_service.domain.model import BatchRules, CompletedOrder, ProductSales, RankedProduct, SoldItem
from ranking_service.messaging.consumers import completed_orders_handler, to_command
from ranking_service.service.cache import AnswerCache
from ranking_service.service.rollup import Outcome, catch_up, post_rebuild, roll_up_day
from ranking_service.service.scheduler import Scheduler
from ranking_service.service.statistics import record_completed_orders
from ranking_service.service.top_products import get_top_products
from shared.events.orders import OrderCompleted, OrderCompletedItem
from shared.events.users import UserRegistered
from shared.messaging.envelope import Incoming
from tests.ranking_service.fakes import FakeConflictError, FakeUnitsOfWork
from tests.ranking_service.support import SettableClock, order

pytestmark = pytest.mark.asyncio

SEOUL = ZoneInfo("Asia/Seoul")
NOV = lambda d: date(2026, 11, d)  # noqa: E731
NOON_24 = datetime(2026, 11, 24, 3, tzinfo=UTC)  # 2026-11-24 12:00 KST
RULES = BatchRules(SEOUL, delay_s=0, catch_up_days=5, snapshot_size=2)


def _record(at: datetime, *items: tuple[int, str, int], order_id: str | None = None) -> RecordCompletedOrder:
    lines = tuple(SoldItem(*item) for item in items)
    return RecordCompletedOrder(uuid.uuid4(), order_id or str(uuid.uuid4()), CompletedOrder(at, lines))


def _event(cmd: RecordCompletedOrder) -> Incoming:
    """The ``order.completed`` record of ``cmd``, as the consumer decodes it."""
    items = [
        OrderCompletedItem(product_id=i.product_id, name=i.name, unit_price=1, quantity=i.quantity)
        for i in cmd.order.items
    ]
    total = sum(i.quantity for i in items)
    message = OrderCompleted(
        event_id=cmd.event_id,
        order_id=cmd.order_id,
        user_id=1,
        items=items,
        total_amount=total,
        discount_amount=0,
        paid_amount=total,
        user_coupon_id=None,
        completed_at=cmd.order.completed_at,
    )
    return Incoming("order.completed", 0, 0, cmd.order_id, message)


async def _count(uow: FakeUnitsOfWork, *cmds: RecordCompletedOrder, cache: AnswerCache | None = None) -> None:
    """``cmds`` consumed as one batch, through the consumer's pipeline."""
    deps = Deps(uow=uow, clock=SettableClock(NOON_24), rules=RULES, cache=cache or AnswerCache(10), instance_id="t")
    await completed_orders_handler(deps)([_event(c) for c in cmds])


async def test_orders_count_once_by_event_and_by_order() -> None:
    uow = FakeUnitsOfWork()
    first = _record(NOON_24, (7, "seven", 2), order_id="o1")
    await _count(uow, first, first, _record(NOON_24, (8, "eight", 1)))
    again = _record(NOON_24, (7, "seven", 2), order_id="o1")  # another event of the same order
    await _count(uow, first, again)
    async with uow(single_statement=True) as reader:
        assert await reader.sales.top(NOV(24), NOV(24), 5) == [
            ProductSales(7, "seven", 2, 1),
            ProductSales(8, "eight", 1, 1),
        ]
    assert uow.db.commits == 2  # one transaction per batch


async def test_a_batch_without_completed_orders_opens_no_transaction() -> None:
    uow = FakeUnitsOfWork()
    other = UserRegistered(user_id=1, name="x", created_at=NOON_24)
    deps = Deps(uow=uow, clock=SettableClock(NOON_24), rules=RULES, cache=AnswerCache(10), instance_id="t")
    await completed_orders_handler(deps)([Incoming("user.registered", 0, 0, "1", other)])
    assert uow.opened == []
    await completed_orders_handler(deps)(
        [Incoming("user.registered", 0, 1, "1", other), _event(_record(NOON_24, (1, "a", 1)))]
    )
    assert len(uow.opened) == 1 and uow.db.commits == 1


async def test_the_handler_runs_inside_the_callers_transaction() -> None:
    uow = FakeUnitsOfWork()
    async with uow() as tx:
        assert await record_completed_orders(tx, SEOUL, [_record(NOON_24, (1, "one", 1))]) == 1
    assert uow.db.commits == 0  # not committed: nothing kept
    async with uow(single_statement=True) as reader:
        assert await reader.sales.top(NOV(24), NOV(24), 5) == []


async def test_a_conflicting_batch_is_retried_whole_and_counts_once() -> None:
    uow = FakeUnitsOfWork()
    uow.db.fail_commits = [FakeConflictError(), FakeConflictError()]
    await _count(uow, _record(NOON_24, (1, "one", 3)))
    assert uow.db.commits == 1
    async with uow(single_statement=True) as reader:
        assert await reader.sales.top(NOV(24), NOV(24), 5) == [ProductSales(1, "one", 3, 1)]


async def test_a_batch_that_keeps_conflicting_fails_after_five_attempts() -> None:
    uow = FakeUnitsOfWork()
    uow.db.fail_commits = [FakeConflictError() for _ in range(5)]
    with pytest.raises(FakeConflictError):
        await _count(uow, _record(NOON_24, (1, "one", 3)))
    assert uow.db.commits == 0


async def test_the_answer_cache_is_cleared_only_when_something_counted() -> None:
    uow, cache = FakeUnitsOfWork(), AnswerCache(10)
    cmd = _record(NOON_24, (1, "one", 3))
    await _count(uow, cmd, cache=cache)
    assert cache.generation == 1
    await _count(uow, cmd, cache=cache)  # a redelivery
    assert cache.generation == 1


async def test_top_products_reads_in_single_statement_mode_through_the_cache() -> None:
    uow, cache, clock = FakeUnitsOfWork(), AnswerCache(10), SettableClock(NOON_24)
    await _count(uow, _record(NOON_24, (1, "one", 3)), _record(NOON_24 - timedelta(days=2), (2, "two", 9)))
    uow.opened.clear()
    answer = await get_top_products(uow, cache, clock, SEOUL, GetTopProducts(days=3, limit=5))
    assert (answer.window.first, answer.window.last, answer.generated_at) == (NOV(22), NOV(24), NOON_24)
    assert [(r.rank, r.sales.product_id) for r in answer.items] == [(1, 2), (2, 1)]
    assert [u.single_statement for u in uow.opened] == [True]
    assert await get_top_products(uow, cache, clock, SEOUL, GetTopProducts(days=3, limit=5)) is answer
    assert len(uow.opened) == 1  # the cached answer: no database
    day_one = await get_top_products(uow, cache, clock, SEOUL, GetTopProducts(days=1, limit=5))
    assert [r.sales.product_id for r in day_one.items] == [1]


async def test_a_day_is_rolled_up_once_and_skipped_while_another_holds_it() -> None:
    uow = FakeUnitsOfWork()
    await _count(uow, _record(NOON_24, (1, "one", 3)), _record(NOON_24, (2, "two", 5)), _record(NOON_24, (3, "x", 1)))
    async with uow() as other:
        await other.batch_runs.lock(NOV(24))
        assert await roll_up_day(uow, RULES, "a", NOV(24)) is Outcome.BUSY
    assert await roll_up_day(uow, RULES, "a", NOV(24)) is Outcome.RAN
    assert await roll_up_day(uow, RULES, "b", NOV(24)) is Outcome.ALREADY_DONE
    async with uow(single_statement=True) as reader:
        assert await reader.snapshots.get(NOV(24)) == [  # snapshot_size 2
            RankedProduct(1, ProductSales(2, "two", 5, 1)),
            RankedProduct(2, ProductSales(1, "one", 3, 1)),
        ]
    assert uow.db.tables.batch_runs[NOV(24)].products == 2


async def test_catch_up_rolls_up_the_missing_days_oldest_first() -> None:
    uow = FakeUnitsOfWork()
    assert await roll_up_day(uow, RULES, "a", NOV(22)) is Outcome.RAN
    result = await catch_up(uow, RULES, "a", NOV(25))
    assert result.ran == [NOV(20), NOV(21), NOV(23), NOV(24)]
    assert result.busy == []


async def test_the_scheduler_settles_once_every_due_day_is_done() -> None:
    uow, clock = FakeUnitsOfWork(), SettableClock(NOON_24)
    scheduler = Scheduler(uow, clock, RULES, "a")
    await scheduler.tick()
    assert scheduler.settled_for == NOV(24)
    assert scheduler.rolled_up == [NOV(19), NOV(20), NOV(21), NOV(22), NOV(23)]
    await scheduler.tick()  # same day: nothing to do
    assert len(scheduler.rolled_up) == 5
    clock.now += timedelta(days=1)
    await scheduler.tick()
    assert (scheduler.settled_for, scheduler.rolled_up[-1]) == (NOV(25), NOV(24))


async def test_post_rebuild_catches_up_recomputes_yesterday_and_clears_the_cache() -> None:
    uow, cache, clock = FakeUnitsOfWork(), AnswerCache(10), SettableClock(NOON_24)
    await _count(uow, _record(NOON_24 - timedelta(days=1), (4, "four", 2)))
    assert await roll_up_day(uow, RULES, "a", NOV(23)) is Outcome.RAN
    generation = cache.generation
    done = await post_rebuild(uow, cache, clock, RULES, "b", PostRebuild())
    assert (done.day, done.products, done.caught_up) == (NOV(23), 1, [NOV(19), NOV(20), NOV(21), NOV(22)])
    assert uow.db.tables.batch_runs[NOV(23)].runs == 2
    assert cache.generation == generation + 1
    again = await post_rebuild(uow, cache, clock, RULES, "b", PostRebuild(NOV(19)))
    assert (again.day, again.products, again.caught_up) == (NOV(19), 0, [])


@pytest.mark.parametrize("day", [NOV(24), NOV(25), NOV(18)])
async def test_post_rebuild_refuses_days_not_closed_or_too_far_back(day: date) -> None:
    uow = FakeUnitsOfWork()
    with pytest.raises(InvalidRebuildDayError):
        await post_rebuild(uow, AnswerCache(10), SettableClock(NOON_24), RULES, "a", PostRebuild(day))
    assert uow.opened == []  # refused before any work


async def test_an_order_completed_event_becomes_a_record_command() -> None:
    event = order("2026-11-24T03:00:00Z", (1, "one", 2), (2, "two", 1))
    cmd = to_command(event)
    assert (cmd.event_id, cmd.order_id) == (event.event_id, event.order_id)
    assert cmd.order == CompletedOrder(NOON_24, (SoldItem(1, "one", 2), SoldItem(2, "two", 1)))
