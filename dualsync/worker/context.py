"""The worker's typed context: one psycopg pool and one Redis client per process.

arq hands lifecycle hooks an untyped `ctx` dict; everything dualsync keeps there lives
in one `WorkerContext` under one key, read back through `context(ctx)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aredis
from psycopg_pool import AsyncConnectionPool

from dualsync.schema.legacy import LegacyReader
from dualsync.schema.mapping import MappingSet
from dualsync.worker.config import WorkerConfig
from dualsync.worker.consumer import Consumer
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


@dataclass(slots=True)
class WorkerContext:
    """Resources of one worker process, opened in `on_startup`, closed in `on_shutdown`."""

    options: StartOptions
    pool: AsyncConnectionPool[Any]
    redis: aredis.Redis
    block_clients: list[aredis.Redis]
    mappings: MappingSet
    consumers: list[Consumer] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    #: set when a consumer task died: the process must exit non-zero
    crashed: BaseException | None = None

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
