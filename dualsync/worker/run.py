"""Ways to run a worker: under arq (production), or until the streams are drained (tests, demo)."""

from __future__ import annotations

import asyncio
import math

from arq.connections import RedisSettings

from dualsync.errors import DualsyncError, ServiceUnavailableError
from dualsync.redisconn import is_cluster_url
from dualsync.schema.streams import UNREACHABLE
from dualsync.worker import lifecycle, plain_host
from dualsync.worker.context import StartOptions, WorkerContext
from dualsync.worker.host import build_worker
from dualsync.worker.settings import OPTIONS_KEY, WorkerSettings

__all__ = ["ConsumerCrashedError", "run_arq", "run_until_idle"]


class ConsumerCrashedError(DualsyncError):
    """A consumer task died: the worker stopped instead of idling silently."""

    reason = "consumer_crashed"


def run_arq(opts: StartOptions) -> None:
    """Run under arq until SIGTERM/SIGINT; raise if a consumer crashed or Redis went away.

    On a Redis Cluster (which arq cannot use) the same worker runs on `plain_host`."""
    if is_cluster_url(opts.redis_url):
        _raise_if_crashed(asyncio.run(plain_host.serve(opts)))
        return
    redis_settings = RedisSettings.from_dsn(opts.redis_url)
    # A worker started while Redis is away waits for it as long as a running one would.
    redis_settings.conn_retries = max(
        1, math.ceil(opts.config.redis_outage_s / max(redis_settings.conn_retry_delay, 1))
    )
    worker = build_worker(
        WorkerSettings,
        outage_s=opts.config.redis_outage_s,
        redis_settings=redis_settings,
        queue_name=f"{opts.config.prefix}:arq",
        ctx={OPTIONS_KEY: opts},
    )
    try:
        worker.run()
    except UNREACHABLE as exc:
        raise ServiceUnavailableError(
            f"lost Redis for longer than {opts.config.redis_outage_s:.0f} s ({exc}); "
            "nothing unacked is lost: restart the worker once Redis is back"
        ) from None
    wctx = worker.ctx.get("dualsync")
    if isinstance(wctx, WorkerContext):
        _raise_if_crashed(wctx)


def _raise_if_crashed(wctx: WorkerContext) -> None:
    if wctx.crashed is not None:
        raise ConsumerCrashedError(f"a consumer stopped: {wctx.crashed}") from wctx.crashed


async def run_until_idle(opts: StartOptions, idle_s: float = 0.5) -> WorkerContext:
    """Consume until every stream is drained and nothing is pending; return the context."""
    wctx = await lifecycle.start(opts, until_idle=idle_s)
    try:
        await asyncio.gather(*wctx.tasks)
    finally:
        await lifecycle.stop(wctx)
    return wctx
