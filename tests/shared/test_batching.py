"""shared.batching.Batcher: concurrent calls coalesced into flushes, results and errors per item."""

from __future__ import annotations

import asyncio

import pytest

from shared.batching import Batcher

pytestmark = pytest.mark.asyncio


class Recorder:
    """A flush that records its batches and can be held open."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.running = 0
        self.most_running = 0

    async def flush(self, items: list[int]) -> list[object]:
        self.batches.append(list(items))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate.wait()
            return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]
        finally:
            self.running -= 1


async def test_a_lone_item_is_flushed_at_once_and_each_caller_gets_its_own_result() -> None:
    rec = Recorder()
    batcher = Batcher(rec.flush, max_batch=8)
    assert await asyncio.wait_for(batcher.submit(4), 1) == 40
    with pytest.raises(ValueError, match="odd 3"):
        await batcher.submit(3)
    assert rec.batches == [[4], [3]]


async def test_items_arriving_during_a_flush_go_together_in_the_next_up_to_max_batch() -> None:
    rec = Recorder()
    rec.gate.clear()
    batcher = Batcher(rec.flush, max_batch=4, max_flushes=1)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.submit(2 * n)) for n in range(1, 11)]
    await asyncio.sleep(0.01)
    assert rec.batches == [[0]] and batcher.pending == 10
    rec.gate.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [20 * n for n in range(1, 11)]
    assert rec.batches == [[0], [2, 4, 6, 8], [10, 12, 14, 16], [18, 20]]
    assert rec.most_running == 1 and batcher.batches == 4 and batcher.items == 11


async def test_at_most_max_flushes_run_at_once() -> None:
    rec = Recorder()
    rec.gate.clear()
    batcher = Batcher(rec.flush, max_batch=2, max_flushes=3)
    tasks = [asyncio.create_task(batcher.submit(2 * n)) for n in range(20)]
    await asyncio.sleep(0.01)
    assert rec.running == 3
    rec.gate.set()
    assert await asyncio.gather(*tasks) == [20 * n for n in range(20)]
    assert rec.most_running == 3 and all(len(b) <= 2 for b in rec.batches)


async def test_a_failing_flush_fails_its_whole_batch_and_the_next_batch_still_runs() -> None:
    calls = []

    async def flush(items: list[int]) -> list[int]:
        calls.append(items)
        await asyncio.sleep(0.01)
        if len(calls) == 1:
            raise ConnectionError("database went away")
        return items

    batcher = Batcher(flush, max_flushes=1)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    second = [asyncio.create_task(batcher.submit(n)) for n in (2, 3)]
    with pytest.raises(ConnectionError):
        await first
    assert await asyncio.gather(*second) == [2, 3]


async def test_a_flush_with_the_wrong_number_of_results_is_an_error_for_all() -> None:
    async def flush(items: list[int]) -> list[int]:
        return items[:-1]

    batcher = Batcher(flush)
    tasks = [asyncio.create_task(batcher.submit(n)) for n in range(3)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert len(results) == 3 and all(isinstance(r, RuntimeError) for r in results)


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    rec = Recorder()
    rec.gate.clear()
    batcher = Batcher(rec.flush, max_flushes=1)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0)
    gone = asyncio.create_task(batcher.submit(2))
    kept = asyncio.create_task(batcher.submit(4))
    await asyncio.sleep(0)
    gone.cancel()
    rec.gate.set()
    assert await first == 0 and await kept == 40
    assert gone.cancelled()
    assert rec.batches == [[0], [2, 4]]  # the cancelled caller's item was flushed anyway
    await batcher.aclose()


async def test_limits_must_be_positive() -> None:
    async def flush(items: list[int]) -> list[int]:
        return items

    with pytest.raises(ValueError):
        Batcher(flush, max_batch=0)
    with pytest.raises(ValueError):
        Batcher(flush, max_flushes=0)
