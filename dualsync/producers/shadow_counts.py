"""Shadow-read counters, batched: added to in memory, written to Redis with one pipeline of
HINCRBYs every `flush_every` compares or `flush_interval_s`, whichever comes first, and on
`aclose()`. Redis is never written per read.

The hashes are `schema.streams.shadow_key(prefix, entity)` (and its `:aa` sibling, see
shadow.py); their fields are counter names and `field:<name>`: never a value. When Redis
is unreachable the counts are kept and added to the next flush (logged once per outage),
so an outage loses no count and never reaches the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import redis.asyncio as aredis
from redis.exceptions import RedisError

from dualsync.logging import get_logger
from dualsync.schema.streams import UNREACHABLE

__all__ = ["ShadowCounts"]

log = get_logger(__name__)


class ShadowCounts:
    """Pending counter increments per Redis hash, and the task that flushes them."""

    def __init__(
        self, client: aredis.Redis, *, flush_every: int = 100, flush_interval_s: float = 0.5
    ) -> None:
        self._redis = client
        self._every = flush_every
        self._interval = flush_interval_s
        self._pending: dict[str, Counter[str]] = {}
        self._since_flush = 0
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unreachable = False
        self._closing = False
        #: pipelines sent to Redis (tests check that reads are batched)
        self.flushes = 0

    def add(self, key: str, name: str, n: int = 1) -> None:
        """Add `n` to field `name` of hash `key` (in memory; synchronous, no I/O)."""
        self._pending.setdefault(key, Counter())[name] += n
        self._ensure_task()

    def compared(self) -> None:
        """One compare finished: flush soon when `flush_every` of them are pending."""
        self._since_flush += 1
        if self._since_flush >= self._every:
            self._kick.set()

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="dualsync-shadow-counts")

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self._interval)
            self._kick.clear()
            await self.flush()
            if self._closing:
                return

    async def flush(self) -> None:
        """Send what is pending in one pipeline; on an outage keep it for the next flush."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        self._since_flush = 0
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, counts in batch.items():
                    for name, n in counts.items():
                        pipe.hincrby(key, name, n)
                await pipe.execute()
        except asyncio.CancelledError:
            self._restore(batch)  # cancelled mid-flush (aclose): flushed again right after
            raise
        except (*UNREACHABLE, RedisError) as exc:
            self._restore(batch)
            if not self._unreachable:
                log.warning("shadow_counts_not_written_keeping_them",
                            error=type(exc).__name__)  # fmt: skip
                self._unreachable = True
            return
        self._unreachable = False
        self.flushes += 1

    def _restore(self, batch: dict[str, Counter[str]]) -> None:
        for key, counts in batch.items():  # nothing lost: merged into what came since
            self._pending.setdefault(key, Counter()).update(counts)

    async def aclose(self) -> None:
        """Stop the flusher, then flush what is left (once; kept if Redis is away)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            # stopped between flushes, never cancelled inside one: a pipeline Redis ran
            # must not be restored and sent twice
            self._closing = True
            self._kick.set()
            await task
            self._closing = False
        await self.flush()
