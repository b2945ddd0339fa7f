"""The worker's typed context: one psycopg pool and one Redis client per process.

arq hands lifecycle hooks an untyped `ctx` dict; everything dualsync keeps there lives
in one `WorkerContext` under one key, read back through `context(ctx)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from psycopg_pool import AsyncConnectionPool

from dualsync.redisconn import AnyRedis
from dualsync.schema.legacy import LegacyReader
from dualsync.schema.mapping import MappingSet
from dualsync.worker.config import WorkerConfig
from dualsync.worker.consumer import Consumer
from dualsync.worker.counters import RedisCounters
from dualsync.worker.metrics import MetricsServer, Sampler
from dualsync.worker.stats import Stats

__all__ = ["CTX_KEY", "StartOptions", "VerifyJob", "WorkerContext", "context"]

CTX_KEY: Final = "dualsync"
#: one scheduled verify run (returns a one-line summary for the log)
VerifyJob = Callable[[], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class StartOptions:
    """What `on_startup` needs that arq does not know about."""

    config: WorkerConfig
    database_url: str
    redis_url: str
    signing_keys: dict[str, bytes] = field(default_factory=dict)
    legacy: LegacyReader | None = None
    mappings: MappingSet | None = None
    #: the scheduled verify (given by `dualsync worker`: the worker cannot import ops/)
    verify_job: VerifyJob | None = None
    #: seconds between scheduled verifies, across all workers
    verify_every_s: float = 300.0
    #: serve `/metrics` and `/healthz` on this port (0: no endpoint)
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    #: seconds between readings of pending counts, modes, verify bounds and health probes
    metrics_interval_s: float = 5.0
    #: Redis or Postgres silent longer than this makes `/healthz` fail (default: the
    #: worker's Redis outage window, `WorkerConfig.redis_outage_s`)
    health_window_s: float | None = None


@dataclass(slots=True)
class WorkerContext:
    """Resources of one worker process, opened in `on_startup`, closed in `on_shutdown`."""

    options: StartOptions
    pool: AsyncConnectionPool[Any]
    redis: AnyRedis
    block_clients: list[AnyRedis]
    mappings: MappingSet
    consumers: list[Consumer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    #: set when a consumer task died: the process must exit non-zero
    crashed: BaseException | None = None
    #: per-entity counters for `dualsync status`, flushed to Redis in the background
    counters: RedisCounters | None = None
    #: the metrics endpoint and its sampler (None without `metrics_port`)
    sampler: Sampler | None = None
    server: MetricsServer | None = None

    @property
    def config(self) -> WorkerConfig:
        """The worker's tuning."""
        return self.options.config


def context(ctx: dict[str, Any]) -> WorkerContext:
    """The typed context stored in arq's ctx dict."""
    value = ctx[CTX_KEY]
    if not isinstance(value, WorkerContext):
        raise TypeError("arq ctx holds no dualsync WorkerContext: was on_startup run?")
    return value
