"""Readings that cost a round trip, taken on the event loop every few seconds, never per scrape.

One task reads the pending count and the lag of each shard stream, the read-path modes
(the `readpath` hash) and the latest verify bound per entity (`dualsync.verify_runs`). The
same round trips double as the health probes: the last time Redis and Postgres answered is
what `/healthz` judges against the outage window. Every probe has a timeout, so a hung
server delays one reading, not the sampler. The result is one frozen `Sample`, swapped in
whole: the HTTP thread reads a consistent snapshot without a lock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from redis.exceptions import RedisError, ResponseError

from dualsync.logging import get_logger
from dualsync.redisconn import AnyRedis
from dualsync.schema.readpath import Mode
from dualsync.schema.streams import UNREACHABLE, readpath_key, stream_keys

__all__ = ["LAG_CAP", "Sample", "Sampler"]

#: undelivered entries counted per stream on Redis < 7 (which reports no `lag`); a
#: backlog beyond this shows as this number (an alert threshold should sit below it)
LAG_CAP = 10_000

log = get_logger(__name__)

_LATEST_BOUNDS = (
    "select distinct on (entity) entity, drift_upper_bound from dualsync.verify_runs "
    "where status = 'done' order by entity, started_at desc"
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of everything the sampler watches."""

    #: shard number -> entries delivered to the group and not yet acknowledged
    pending: dict[int, int] = field(default_factory=dict)
    #: shard number -> entries not acknowledged: pending plus not yet delivered
    lag: dict[int, int] = field(default_factory=dict)
    #: entity -> read-path mode (every mapped entity; absent from the hash: legacy)
    modes: dict[str, Mode] = field(default_factory=dict)
    #: entity -> 95% upper bound of the drift rate of its latest finished verify run
    drift_upper: dict[str, float] = field(default_factory=dict)
    #: monotonic times Redis / Postgres last answered (start-up counts as an answer)
    redis_ok_at: float = 0.0
    pg_ok_at: float = 0.0
    redis_error: str = ""
    pg_error: str = ""


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Sampler:
    """Takes a `Sample` every `interval_s` until closed."""

    def __init__(
        self,
        redis: AnyRedis,
        pool: AsyncConnectionPool[Any],
        *,
        prefix: str,
        shards: int,
        group: str,
        entities: list[str],
        interval_s: float = 5.0,
    ) -> None:
        self._redis = redis
        self._pool = pool
        self._prefix = prefix
        self._streams = stream_keys(prefix, shards)
        self._group = group
        self._entities = entities
        self.interval_s = interval_s
        self._timeout = max(min(interval_s, 2.0), 0.2)
        now = time.monotonic()
        self.sample = Sample(redis_ok_at=now, pg_ok_at=now)
        self._task: asyncio.Task[None] | None = None

    def open(self) -> None:
        """Start sampling (the first reading is taken at once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="metrics-sampler")

    async def aclose(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.take()
            await asyncio.sleep(self.interval_s)

    async def take(self) -> Sample:
        """One reading; what could not be read keeps its previous value."""
        old = self.sample
        streams, modes, redis_ok, redis_err = await self._redis_side(old)
        bounds, pg_ok, pg_err = await self._pg_side(old)
        pending = {n: p for n, (p, _) in streams.items()}
        lag = {n: g for n, (_, g) in streams.items()}
        self.sample = Sample(pending, lag, modes, bounds, redis_ok, pg_ok, redis_err, pg_err)
        return self.sample

    async def _redis_side(
        self, old: Sample
    ) -> tuple[dict[int, tuple[int, int]], dict[str, Mode], float, str]:
        try:
            async with asyncio.timeout(self._timeout):
                streams = {n: await self._stream(s) for n, s in enumerate(self._streams)}
                raw = await self._redis.hgetall(readpath_key(self._prefix))  # type: ignore[misc]  # redis stubs: Awaitable|dict
        except (*UNREACHABLE, RedisError, TimeoutError) as exc:
            log.debug("sampler_redis_failed", error=repr(exc))
            kept = {n: (p, old.lag.get(n, 0)) for n, p in old.pending.items()}
            return kept, old.modes, old.redis_ok_at, repr(exc)
        set_modes = {_s(k): _s(v) for k, v in raw.items()}
        modes = {}
        for e in sorted({*self._entities, *set_modes}):
            try:
                modes[e] = Mode(set_modes.get(e, Mode.LEGACY.value))
            except ValueError:
                log.warning("unknown_read_path_mode", entity=e, mode=set_modes.get(e))
        return streams, modes, time.monotonic(), ""

    async def _stream(self, stream: str) -> tuple[int, int]:
        """(pending, lag) of one stream. Redis 7 reports the undelivered count (`lag`);
        on 6.2 the entries after the last delivered id are counted, up to `LAG_CAP`."""
        try:
            groups: list[dict[str, Any]] = await self._redis.xinfo_groups(stream)
        except ResponseError:  # no stream yet
            return 0, 0
        info = next((g for g in groups if _s(g.get("name")) == self._group), None)
        if info is None:  # no group yet: everything is undelivered
            return 0, min(int(await self._redis.xlen(stream)), LAG_CAP)
        pending = int(info.get("pending", 0))
        lag = info.get("lag")
        if lag is None:
            last = _s(info.get("last-delivered-id", "0-0"))
            lag = len(await self._redis.xrange(stream, min=f"({last}", max="+", count=LAG_CAP))
        return pending, pending + int(lag)

    async def _pg_side(self, old: Sample) -> tuple[dict[str, float], float, str]:
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._pool.connection(timeout=self._timeout) as conn,
            ):
                await conn.execute("select 1")
                ok_at = time.monotonic()
                try:
                    cur = await conn.execute(_LATEST_BOUNDS)
                    rows = await cur.fetchall()
                except psycopg.errors.UndefinedTable:  # dualsync's tables not migrated yet
                    return {}, ok_at, ""
        except (psycopg.Error, TimeoutError, OSError) as exc:
            log.debug("sampler_postgres_failed", error=repr(exc))
            return old.drift_upper, old.pg_ok_at, repr(exc)
        bounds = {str(e): float(b) for e, b in rows if b is not None}
        return bounds, ok_at, ""
