"""Shutdown never hangs on a background task that ignores its cancellation (shared.wiring.cancel)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from shared.wiring import cancel

pytestmark = pytest.mark.asyncio


async def test_a_task_that_ends_is_awaited() -> None:
    task = asyncio.create_task(asyncio.sleep(60))
    await cancel(task, grace_s=5)
    assert task.cancelled()


async def test_the_exception_a_task_ended_with_is_raised() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise RuntimeError("broke while stopping") from None

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="broke while stopping"):
        await cancel(task, grace_s=5)


async def test_a_task_that_ignores_cancellation_is_left_behind_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    async def stuck() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # as a client stuck in a rebalance: the cancellation is lost

    task = asyncio.create_task(stuck(), name="stuck-consumer")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="shared.wiring"):
        await cancel(task, grace_s=0.2)
    assert not task.done()
    assert any(getattr(r, "task", None) == "stuck-consumer" for r in caplog.records)
    release.set()
    await task
