"""Ways to run a worker: under arq (production), or until the streams are drained (tests, demo)."""

from __future__ import annotations

import asyncio

from arq.connections import RedisSettings
from arq.worker import create_worker

from dualsync.worker import lifecycle
from dualsync.worker.context import StartOptions, WorkerContext
from dualsync.worker.settings import OPTIONS_KEY, WorkerSettings

__all__ = ["ConsumerCrashedError", "run_arq", "run_until_idle"]


class ConsumerCrashedError(RuntimeError):
    """A consumer task died: the worker stopped instead of idling silently."""


def run_arq(opts: StartOptions) -> None:
    """Run under arq until SIGTERM/SIGINT; raise if a consumer crashed."""
    worker = create_worker(
        WorkerSettings,  # type: ignore[arg-type]  # arq's stub wants its TypedDict; a class works
        redis_settings=RedisSettings.from_dsn(opts.redis_url),
        queue_name=f"{opts.config.prefix}:arq",
        ctx={OPTIONS_KEY: opts},
    )
    worker.run()
    wctx = worker.ctx.get("dualsync")
    if isinstance(wctx, WorkerContext) and wctx.crashed is not None:
        raise ConsumerCrashedError(f"consumer crashed: {wctx.crashed!r}") from wctx.crashed


async def run_until_idle(opts: StartOptions, idle_s: float = 0.5) -> WorkerContext:
    """Consume until every stream is drained and nothing is pending; return the context."""
    wctx = await lifecycle.start(opts, until_idle=idle_s)
    try:
        await asyncio.gather(*wctx.tasks)
    finally:
        await lifecycle.stop(wctx)
    return wctx
