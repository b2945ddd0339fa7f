"""Per-entity counters in Redis (`schema.streams.worker_stats_key`), for `dualsync status`.

Every worker adds what it counted to one hash, so `status` sees the whole fleet. A batch
never waits for this: the consumer only wakes the flusher (`Stats.on_batch`), which sends
the increments since its last send as one pipelined HINCRBY set, at most one send in
flight (batches finishing meanwhile coalesce into the next). Best effort by design: when
Redis fails or is slow, that delta is dropped (the process's own counters and the
Prometheus metrics still hold it) and `redis_errors` counts the failure; the apply path
has its own outage handling and must not be slowed by this.
"""

from __future__ import annotations

import asyncio

from redis.exceptions import RedisError

from dualsync.logging import get_logger
from dualsync.redisconn import AnyRedis
from dualsync.schema.streams import UNREACHABLE, worker_stats_key
from dualsync.worker.stats import Stats

__all__ = ["RedisCounters"]

log = get_logger(__name__)


class RedisCounters:
    """Flushes `Stats.by_entity` increments to Redis in the background."""

    def __init__(
        self, redis: AnyRedis, prefix: str, stats: Stats, *, timeout_s: float = 2.0
    ) -> None:
        self._redis = redis
        self._key = worker_stats_key(prefix)
        self._stats = stats
        self._timeout = timeout_s
        self._sent: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def wake(self) -> None:
        """A batch is done (`Stats.on_batch`): flush soon, without waiting here."""
        self._wake.set()

    def open(self) -> None:
        """Start the flusher task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="stats-counters")

    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    def _delta(self) -> dict[str, int]:
        now = dict(self._stats.by_entity)
        delta = {k: v - self._sent.get(k, 0) for k, v in now.items() if v != self._sent.get(k)}
        self._sent = now  # sent or given up on: never sent twice
        return delta

    async def flush(self) -> bool:
        """Send what was counted since the last flush; False if Redis failed (dropped)."""
        delta = self._delta()
        if not delta:
            return True
        try:
            async with asyncio.timeout(self._timeout):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for field, n in delta.items():
                        pipe.hincrby(self._key, field, n)
                    await pipe.execute()
        except (*UNREACHABLE, RedisError, TimeoutError) as exc:
            self._stats.redis_errors += 1
            log.warning("stats_counters_dropped", error=repr(exc), fields=len(delta))
            return False
        return True

    async def aclose(self) -> None:
        """Let a send in flight finish (each is bounded by the timeout), then send the rest."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
