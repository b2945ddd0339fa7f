"""Read ahead: the next chunks of a key range are read and prepared while this one commits.

A backfill chunk costs reading and parsing (the store), mapping (CPU, `StagedSink.prepare`)
and a transaction or publish (waiting on Postgres or Redis). Done one after the other, the
process idles while the server works and the server idles while Python maps. `ahead` runs
the reading and preparing of up to `depth` chunks in a task of its own (the CPU part in a
thread) and hands them over in key order, so the caller commits chunk N while chunk N+1
is being made ready. Only the caller commits and records progress, strictly in order:
a chunk read ahead but not committed when the run stops or crashes is simply read again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import TypeVar

__all__ = ["ahead"]

T = TypeVar("T")
U = TypeVar("U")

#: chunks made ready before the caller takes them: one is in commit, one waits, one is read
DEPTH = 2


class _End:
    """The source is exhausted (or failed: the task's exception says which)."""


async def _produce(
    source: AsyncIterator[T], make: Callable[[T], Awaitable[U]], queue: asyncio.Queue[U | _End]
) -> None:
    try:
        async for item in source:
            await queue.put(await make(item))
    except asyncio.CancelledError:
        raise
    except BaseException:
        await queue.put(_End())  # the consumer takes it, then the exception from the task
        raise
    finally:
        if isinstance(source, AsyncGenerator):
            await source.aclose()  # a store's reader: close it now, not at GC
    await queue.put(_End())


async def _settle(task: asyncio.Task[None]) -> None:
    """Cancel the producer if it still runs, and wait for it to end."""
    if not task.done():
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise  # the consumer itself is being cancelled
    except Exception:  # noqa: BLE001, S110 - raised to the consumer already, or unheard
        # An error the producer met after the consumer stopped listening goes nowhere:
        # the consumer is leaving anyway (stopped, past its range, or failing itself).
        pass


async def ahead(
    source: AsyncIterator[T], make: Callable[[T], Awaitable[U]], depth: int = DEPTH
) -> AsyncGenerator[U, None]:
    """`make(item)` for every item of `source`, in order, computed up to `depth` ahead.

    Leaving the loop early (a break, an exception, `aclose()`) cancels the work ahead;
    an exception raised by `source` or `make` is raised here, in order, after the items
    made before it.
    """
    queue: asyncio.Queue[U | _End] = asyncio.Queue(maxsize=depth)
    task = asyncio.create_task(_produce(source, make, queue))
    try:
        while not isinstance(got := await queue.get(), _End):
            yield got
        await task  # raises what the producer raised, if anything
    finally:
        await _settle(task)
