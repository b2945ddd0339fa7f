"""arq hosting: `WorkerSettings`, lifecycle hooks and the cron jobs of a worker process.

The stream consumers are long-lived tasks started in `on_startup` and stopped in
`on_shutdown`; bounded periodic work (trimming) runs as arq cron jobs.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from arq.connections import RedisSettings
from arq.cron import CronJob, cron

from dualsync.logging import get_logger
from dualsync.schema.streams import stream_keys, verify_last_key, verify_lock_key
from dualsync.worker import lifecycle
from dualsync.worker.context import CTX_KEY, StartOptions, context
from dualsync.worker.singleton import singleton
from dualsync.worker.trim import trim_streams

__all__ = ["OPTIONS_KEY", "WorkerSettings", "on_shutdown", "on_startup", "trim", "verify"]

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


#: a scheduled verify that crashed stops renewing its lease: the next may start after this
VERIFY_LEASE_MS = 10 * 60 * 1000


async def verify(ctx: dict[str, Any]) -> str:
    """The scheduled verify: at most one run at a time across every worker, and one run per
    `verify_every_s` (the start time is shared in Redis); a no-op without a verify job."""
    wctx = context(ctx)
    opts = wctx.options
    if opts.verify_job is None or opts.verify_every_s <= 0:
        return "off"
    prefix = wctx.config.prefix
    last = await wctx.redis.get(verify_last_key(prefix))
    if last is not None and time.time() - float(last) < opts.verify_every_s:
        return "not due"
    async with singleton(wctx.redis, verify_lock_key(prefix), VERIFY_LEASE_MS) as mine:
        if not mine:
            return "another worker is verifying"
        await wctx.redis.set(verify_last_key(prefix), str(time.time()))
        summary = await opts.verify_job()
        log.info("scheduled_verify_done", summary=summary)
        return summary


class WorkerSettings:
    """arq settings; `dualsync worker` fills `redis_settings` and `ctx` at start."""

    functions: ClassVar[list[Any]] = [trim, verify]
    cron_jobs: ClassVar[list[CronJob]] = [
        cron(trim, second={0}, run_at_startup=False),
        # every minute; `verify` itself decides whether a run is due (--verify-every)
        cron(verify, second={30}, run_at_startup=False, timeout=VERIFY_LEASE_MS // 1000),
    ]
    on_startup = on_startup
    on_shutdown = on_shutdown
    redis_settings = RedisSettings()
    queue_name = "dualsync:arq"
    health_check_interval = 30
    handle_signals = True
    job_timeout = 300
