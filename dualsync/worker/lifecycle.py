"""Worker lifecycle: open resources and start consumers; stop them and close everything.

Used by arq's `on_startup`/`on_shutdown` and by `run_until_idle` (tests, demo) alike.
A consumer task that dies is not left silent: it is logged as critical, recorded in the
context and the process is told to shut down, so `dualsync worker` exits non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dualsync import gctune
from dualsync.consumers.pool import configure_connection
from dualsync.errors import ConfigError, DualsyncError
from dualsync.logging import get_logger
from dualsync.redisconn import AnyRedis, connect
from dualsync.schema.mapping import MappingSet, load_enum_labels, load_mapping
from dualsync.worker.consumer import Consumer
from dualsync.worker.context import StartOptions, WorkerContext
from dualsync.worker.counters import RedisCounters
from dualsync.worker.inflight import InFlight
from dualsync.worker.metrics import HealthCheck, MetricsServer, Sampler, WorkerMetrics

__all__ = ["start", "stop"]

log = get_logger(__name__)


async def _load_mappings(opts: StartOptions, pool: AsyncConnectionPool[Any]) -> MappingSet:
    if opts.mappings is not None:
        ms = opts.mappings
    elif opts.config.mapping_paths:
        ms = load_mapping(opts.config.mapping_paths[0])
    else:
        raise ValueError("the worker needs a mapping: pass --mapping PATH or set DUALSYNC_MAPPING")
    async with pool.connection() as conn:
        ms.bind_enum_labels(await load_enum_labels(conn, ms))
    return ms


async def _warn_without_aof(client: AnyRedis) -> None:
    info = await client.info("persistence")
    if not int(info.get("aof_enabled", 0)):
        log.warning(
            "redis_without_aof",
            hint="a Redis restart loses events not yet applied; run Redis with appendonly yes",
        )


def _on_done(wctx: WorkerContext, task: asyncio.Task[None], *, signal_process: bool) -> None:
    """Done-callback of a consumer task: a crash must be loud."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is None:
        return
    wctx.crashed = exc
    # Our own errors (Redis gone too long, ...) say what happened and what to do; only an
    # unforeseen exception needs its traceback in the log.
    trace = None if isinstance(exc, DualsyncError) else exc
    log.critical("consumer_crashed", task=task.get_name(), error=repr(exc), exc_info=trace)
    if signal_process:
        os.kill(os.getpid(), signal.SIGTERM)  # arq shuts down; `dualsync worker` exits non-zero


async def start(opts: StartOptions, *, until_idle: float | None = None) -> WorkerContext:
    """Open the pool and Redis clients, load mappings, start `concurrency` consumers."""
    cfg = opts.config
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        opts.database_url,
        open=False,
        min_size=1,
        max_size=cfg.concurrency + 2,
        kwargs={"autocommit": True},
        configure=configure_connection,
        name="dualsync-worker",
    )
    await pool.open(wait=True, timeout=30)
    client = connect(opts.redis_url)  # a RedisCluster for a redis+cluster:// URL
    await _warn_without_aof(client)
    mappings = await _load_mappings(opts, pool)
    wctx = WorkerContext(opts, pool, client, [], mappings)
    wctx.counters = RedisCounters(client, cfg.prefix, wctx.stats)
    wctx.stats.on_batch = wctx.counters.wake
    if opts.metrics_port:
        try:  # before the consumers: a port in use fails before any work
            _serve_metrics(wctx)
        except ConfigError:
            await client.aclose()
            await pool.close()
            raise
    wctx.counters.open()
    inflight = InFlight()
    for i in range(cfg.concurrency):
        # Blocking XREADGROUP holds its connection: each consumer gets its own client.
        block = connect(opts.redis_url, max_connections=2)
        wctx.block_clients.append(block)
        name = cfg.consumer_name if cfg.concurrency == 1 else f"{cfg.consumer_name}-{i}"
        consumer = Consumer(
            cfg,
            name=name,
            pool=pool,
            redis=client,
            block_redis=block,
            mappings=mappings,
            legacy=opts.legacy,
            signing_keys=opts.signing_keys,
            stats=wctx.stats,
            inflight=inflight,
        )
        wctx.consumers.append(consumer)
        task = asyncio.create_task(consumer.run(until_idle=until_idle), name=f"consumer:{name}")
        task.add_done_callback(functools.partial(_on_done, wctx, signal_process=until_idle is None))
        wctx.tasks.append(task)
    gctune.hold()  # until `stop`: batches make garbage the default thresholds chase
    log.info("worker_started", consumers=cfg.concurrency, shards=cfg.shards, prefix=cfg.prefix)
    return wctx


def _serve_metrics(wctx: WorkerContext) -> None:
    """Start the sampler and the `/metrics` + `/healthz` endpoint (see `worker.metrics`)."""
    opts, cfg = wctx.options, wctx.config
    sampler = Sampler(wctx.redis, wctx.pool, prefix=cfg.prefix, shards=cfg.shards,
                      group=cfg.group, entities=sorted(wctx.mappings.entities),
                      interval_s=opts.metrics_interval_s)  # fmt: skip
    metrics = WorkerMetrics(wctx.stats, lambda: sampler.sample)
    health = HealthCheck(wctx.tasks, lambda: sampler.sample, crashed=lambda: wctx.crashed,
                         window_s=opts.health_window_s or cfg.redis_outage_s)  # fmt: skip
    try:
        server = MetricsServer(metrics.registry, health, host=opts.metrics_host,
                               port=opts.metrics_port)  # fmt: skip
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {opts.metrics_host}:{opts.metrics_port} ({exc.strerror}); "
            "choose a free port with --metrics-port"
        ) from None
    wctx.stats.observer = metrics
    sampler.open()
    server.open()
    wctx.sampler, wctx.server = sampler, server


async def stop(wctx: WorkerContext) -> None:
    """Stop consumers (finishing batches in hand within the timeout), close resources."""
    if wctx.server is not None:  # a stopping worker is not healthy: stop answering first
        wctx.server.close()
    if wctx.sampler is not None:
        await wctx.sampler.aclose()
    for c in wctx.consumers:
        c.stop()
    pending = [t for t in wctx.tasks if not t.done()]
    if pending:
        _, late = await asyncio.wait(pending, timeout=wctx.config.shutdown_timeout_s)
        for t in late:
            t.cancel()
        for t in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
    if wctx.counters is not None:
        await wctx.counters.aclose()
    for client in (*wctx.block_clients, wctx.redis):
        await client.aclose()
    await wctx.pool.close()
    gctune.release()
    log.info("worker_stopped", **wctx.stats.as_dict())
