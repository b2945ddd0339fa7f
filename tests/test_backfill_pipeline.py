"""The backfill's read-ahead (`pipeline.ahead`) and its GC thresholds (`dualsync.gctune`).

No services: these are the ordering and cancellation rules the run's checkpoint relies on
(tests/test_backfill.py covers them end to end against Postgres).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncGenerator

import pytest

from dualsync.gctune import fewer_collections
from dualsync.producers.backfill.pipeline import ahead


class Source:
    """Counts what was read and whether the reader was closed."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.read = 0
        self.closed = False

    async def items(self) -> AsyncGenerator[int, None]:
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise ValueError(f"unreadable {i}")
                self.read += 1
                yield i
                await asyncio.sleep(0)
        finally:
            self.closed = True


async def double(i: int) -> int:
    await asyncio.sleep(0)
    return i * 2


async def test_every_item_in_order() -> None:
    src = Source(50)
    assert [x async for x in ahead(src.items(), double, depth=3)] == [i * 2 for i in range(50)]
    assert src.closed


async def test_reads_at_most_depth_ahead_of_the_consumer() -> None:
    src = Source(100)
    seen = 0
    async with contextlib.aclosing(ahead(src.items(), double, depth=2)) as it:
        async for _ in it:
            seen += 1
            await asyncio.sleep(0.01)  # a slow commit: the producer must wait, not run on
            # taken + queued (depth) + the one being made while the queue is full
            assert src.read <= seen + 2 + 1
            if seen == 10:
                break
    assert src.read <= 13
    assert src.closed  # leaving early closes the store's reader


async def test_an_error_arrives_after_the_items_before_it() -> None:
    src = Source(10, fail_at=4)
    got: list[int] = []

    async def consume() -> None:
        async for x in ahead(src.items(), double):
            got.append(x)  # noqa: PERF401 - what arrived before the error is the point

    with pytest.raises(ValueError, match="unreadable 4"):
        await consume()
    assert got == [0, 2, 4, 6]


async def test_a_failing_consumer_cancels_the_work_ahead() -> None:
    preparing = asyncio.Event()
    cancelled: list[int] = []

    async def slow(i: int) -> int:
        if i == 1:
            preparing.set()
            try:
                await asyncio.Event().wait()  # still preparing when the consumer fails
            except asyncio.CancelledError:
                cancelled.append(i)
                raise
        return i

    src = Source(10)

    async def consume() -> None:
        async with contextlib.aclosing(ahead(src.items(), slow)) as it:
            async for _ in it:
                await preparing.wait()
                raise RuntimeError("commit failed")

    with pytest.raises(RuntimeError, match="commit failed"):
        await consume()
    assert cancelled == [1]
    assert src.closed
    assert src.read == 2


def test_gc_thresholds_are_raised_for_a_run_and_restored_after_the_last() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        raised = gc.get_threshold()
        assert raised[0] >= max(before[0], 10_000)
        with fewer_collections():  # a second run at the same time
            assert gc.get_threshold() == raised
        assert gc.get_threshold() == raised  # the first run is still on
        assert gc.isenabled()
    assert gc.get_threshold() == before
