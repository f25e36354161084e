"""Coalescing concurrent calls into batches ("group commit" in the application).

    batcher = Batcher(flush, max_batch=256, max_flushes=2)
    result = await batcher.submit(item)      # from many concurrent requests

``flush(items) -> results`` handles a list of items in one go (one SQL statement, one commit) and
returns one result per item, in order; a result that is an exception is raised to that item's
caller alone. When ``flush`` itself raises, every caller of that batch gets the exception.

Batching is natural, never timed: an item submitted while fewer than ``max_flushes`` flushes run
is flushed at once (alone, under light load, so nothing waits for a timer); items submitted while
the flushes are busy queue up and go together in the next one. Under load, batches grow by
themselves to what arrives during one flush, up to ``max_batch``.

A caller cancelled while it waits (a client that went away) does not take its item back: the item
is flushed anyway, like a request whose statement was already sent.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[list[T]], Awaitable[Sequence["R | BaseException"]]]


class Batcher(Generic[T, R]):
    def __init__(self, flush: Flush[T, R], *, max_batch: int = 256, max_flushes: int = 1) -> None:
        if max_batch < 1 or max_flushes < 1:
            raise ValueError("max_batch and max_flushes must be at least 1")
        self._flush = flush
        self.max_batch = max_batch
        self.max_flushes = max_flushes
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._running: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.items = 0

    @property
    def pending(self) -> int:
        """Items waiting for a flush to start."""
        return len(self._queue)

    async def submit(self, item: T) -> R:
        """Flush ``item`` with whatever else is waiting; its result (or its exception)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._start()
        return await future

    def _start(self) -> None:
        while self._queue and len(self._running) < self.max_flushes:
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._start()

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            results = await self._flush([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"flush returned {len(results)} results for {len(batch)} items")
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def aclose(self) -> None:
        """Wait for the flushes in progress (and what they start) to finish."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)
