"""Hosting the consumers without arq, for a Redis Cluster: arq's queue has no cluster client.

Everything arq gives a dualsync worker is kept: the lifecycle hooks (`lifecycle.start` /
`stop`), SIGTERM/SIGINT finishing the batches in hand, and the two periodic jobs of
`settings.py` (`trim` each minute at second 0, the scheduled `verify` each minute at
second 30, which itself decides whether a run is due across all workers). A periodic job
that fails is logged and tried at its next time, as arq does with a failed cron job.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from dualsync.logging import get_logger
from dualsync.worker import lifecycle
from dualsync.worker.context import CTX_KEY, StartOptions, WorkerContext
from dualsync.worker.settings import trim, verify

__all__ = ["serve"]

log = get_logger(__name__)

Job = Callable[[dict[str, Any]], Awaitable[object]]


async def _each_minute(job: Job, ctx: dict[str, Any], at_second: int) -> None:
    """Run `job` every minute at `at_second` past it, as an arq cron job would."""
    while True:
        await asyncio.sleep((at_second - time.time()) % 60 or 60)
        try:
            await job(ctx)
        except Exception as exc:  # noqa: BLE001 - logged; the next minute tries again
            log.error("periodic_job_failed", job=job.__name__, error=repr(exc))  # noqa: TRY400 - no traceback needed


async def serve(opts: StartOptions) -> WorkerContext:
    """Run the consumers and the periodic jobs until SIGTERM/SIGINT or a consumer crash."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    wctx = await lifecycle.start(opts)  # a crashed consumer sends this process SIGTERM
    ctx: dict[str, Any] = {CTX_KEY: wctx}
    jobs = [
        asyncio.create_task(_each_minute(trim, ctx, 0), name="cron:trim"),
        asyncio.create_task(_each_minute(verify, ctx, 30), name="cron:verify"),
    ]
    log.info("worker_hosted_without_arq", reason="Redis Cluster")
    try:
        await stop.wait()
    finally:
        for j in jobs:
            j.cancel()
        for j in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await j
        await lifecycle.stop(wctx)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return wctx
