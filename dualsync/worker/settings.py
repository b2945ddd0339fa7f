"""arq hosting: `WorkerSettings`, lifecycle hooks and the cron jobs of a worker process.

The stream consumers are long-lived tasks started in `on_startup` and stopped in
`on_shutdown`; bounded periodic work (trimming) runs as arq cron jobs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.cron import CronJob, cron

from dualsync.logging import get_logger
from dualsync.schema.streams import stream_keys
from dualsync.worker import lifecycle
from dualsync.worker.context import CTX_KEY, StartOptions, context
from dualsync.worker.trim import trim_streams

__all__ = ["OPTIONS_KEY", "WorkerSettings", "on_shutdown", "on_startup", "trim"]

OPTIONS_KEY = "dualsync_options"
log = get_logger(__name__)


async def on_startup(ctx: dict[str, Any]) -> None:
    """Open the pool and Redis clients and start the consumers."""
    opts = ctx[OPTIONS_KEY]
    if not isinstance(opts, StartOptions):
        raise TypeError("start the worker with `dualsync worker` (ctx has no StartOptions)")
    ctx[CTX_KEY] = await lifecycle.start(opts)


async def on_shutdown(ctx: dict[str, Any]) -> None:
    """Finish the batches in hand, ack, close everything."""
    if CTX_KEY in ctx:
        await lifecycle.stop(context(ctx))


async def trim(ctx: dict[str, Any]) -> int:
    """Trim the shard streams below the oldest pending entry (never an unacked event)."""
    wctx = context(ctx)
    removed = await trim_streams(wctx.redis, stream_keys(wctx.config.prefix, wctx.config.shards))
    if removed:
        log.info("streams_trimmed", removed=removed)
    return removed


class WorkerSettings:
    """arq settings; `dualsync worker` fills `redis_settings` and `ctx` at start."""

    functions: ClassVar[list[Any]] = [trim]
    cron_jobs: ClassVar[list[CronJob]] = [cron(trim, second={0}, run_at_startup=False)]
    on_startup = on_startup
    on_shutdown = on_shutdown
    redis_settings = RedisSettings()
    queue_name = "dualsync:arq"
    health_check_interval = 30
    handle_signals = True
    job_timeout = 300
