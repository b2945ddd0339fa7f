"""`dualsync backfill`: snapshot the legacy store into Postgres while the app keeps writing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import redis.asyncio as aredis
import typer

from dualsync.consumers.pool import open_pool
from dualsync.errors import ConfigError
from dualsync.ops.backfill_direct import DirectSink
from dualsync.ops.cli_options import (
    EntityOption,
    LegacyRootOption,
    MappingOption,
    MongoOption,
    mapping_path,
)
from dualsync.ops.services import open_services
from dualsync.producers.backfill import (
    Backfill,
    BackfillOptions,
    Checkpoint,
    Sink,
    StreamSink,
)
from dualsync.producers.backfill.processes import (
    MAX_AUTO_PROCESSES,
    CountingSink,
    ProcessBackfill,
    planned_processes,
)
from dualsync.producers.publisher import Publisher
from dualsync.producers.stores import LegacyStores, open_stores
from dualsync.schema.legacy import LegacyStore
from dualsync.schema.mapping import MappingSet, load_enum_labels, load_mapping
from dualsync.settings import Settings, get_settings

__all__ = ["backfill", "run_backfill"]

SHOWN_BAD = 10


def backfill(
    mapping: MappingOption = None,
    entity: EntityOption = None,
    all_entities: Annotated[
        bool, typer.Option("--all", help="Every entity with a source (the default).")
    ] = False,
    direct: Annotated[
        bool,
        typer.Option(help="Apply straight to Postgres through the batch path, without Redis."),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="Key ranges read in parallel per entity (per process)."),
    ] = 1,
    processes: Annotated[
        str,
        typer.Option(
            metavar="auto|N",
            help="With --direct: processes that each read, map and apply their own key ranges "
            "(forked at the start; each records its progress in a checkpoint part of its own "
            "beside the checkpoint, <name>.part<i>.json). auto: one per CPU core, at most "
            f"{MAX_AUTO_PROCESSES}; 1 runs in this process. The stream backfill always runs in "
            "one. A resumed run keeps the count it was started with.",
        ),
    ] = "auto",
    chunk: Annotated[int, typer.Option(min=1, max=50_000, help="Records per chunk.")] = 1000,
    resume: Annotated[bool, typer.Option(help="Continue the run the checkpoint holds.")] = False,
    restart: Annotated[
        bool, typer.Option(help="Start over even though a previous run did not finish.")
    ] = False,
    clock_skew_ms: Annotated[
        int,
        typer.Option(
            min=0,
            help="Snapshot versions are the run's start minus this margin, so a live write "
            "on a host whose clock is up to this far behind still wins.",
        ),
    ] = 1000,
    max_lag: Annotated[
        int,
        typer.Option(min=1, help="Wait while the streams hold this many unapplied entries."),
    ] = 100_000,
    parent_wait: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Through the stream, wait up to this long (seconds without progress) for the "
            "workers to apply an entity before its children are sent.",
        ),
    ] = 30.0,
    legacy_root: LegacyRootOption = None,
    mongo: MongoOption = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Checkpoint file (default: DUALSYNC_HOME/backfill/<app>.json)."),
    ] = None,
) -> None:
    """Snapshot every record of the legacy store as upsert events, parents first.

    Safe while the application keeps writing (the version gate keeps the newest), resumable
    after a crash or Ctrl-C (--resume), and it never stops for a bad document: those are
    reported with key and reason and dead-lettered like any event.
    """
    settings = get_settings()
    path = mapping_path(mapping, settings)
    if resume and restart:
        raise ConfigError("--resume and --restart exclude each other")
    ms = load_mapping(path)
    options = BackfillOptions(
        processes=_processes(processes),
        checkpoint=checkpoint or settings.home / "backfill" / f"{ms.app}.json",
        mode="direct" if direct else "stream",
        entities=tuple(entity or ()) if not all_entities else (),
        workers=workers,
        chunk=chunk,
        clock_skew_ms=clock_skew_ms,
        resume=resume,
        restart=restart,
    )
    with open_services(settings, need_redis=not direct) as svc:
        cp, job = asyncio.run(
            run_backfill(
                settings, ms, options, database_url=svc.database_url, redis_url=svc.redis_url,
                legacy_root=legacy_root, mongo_url=mongo or settings.mongo_url, max_lag=max_lag,
                parent_wait_s=parent_wait,
            )
        )  # fmt: skip
    _report(cp, job, checkpoint=options.checkpoint)


def _processes(value: str) -> int | None:
    """`--processes`: None for auto, else a count from 1 to 64."""
    if value.strip().lower() == "auto":
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if not 1 <= n <= 64:  # noqa: PLR2004 - the option's documented range
        raise typer.BadParameter(f"{value!r} is not auto nor a count from 1 to 64",
                                 param_hint="--processes")  # fmt: skip
    return n


def _report(cp: Checkpoint, job: Backfill | ProcessBackfill, *, checkpoint: Path) -> None:
    bad, stopped = job.bad, job.stopped
    for name, e in cp.entities.items():
        state = "done" if e.done else "incomplete"
        typer.echo(f"{name:<24} {e.sent:>9} sent {e.bad:>6} bad  of {e.total:>9}  {state}")
    # this run's gate outcome: re-sent after a crash is `stale`, never applied twice
    if isinstance(job, ProcessBackfill):
        typer.echo(f"applied={job.applied} stale={job.stale} processes={job.processes}")
    elif isinstance(job.sink, DirectSink):
        typer.echo(f"applied={job.sink.applied} stale={job.sink.stale}")
    for b in bad[:SHOWN_BAD]:
        typer.echo(f"bad: {b.entity} {b.key}: {b.reason}: {b.error}", err=True)
    if len(bad) > SHOWN_BAD:
        typer.echo(f"... and {len(bad) - SHOWN_BAD} more bad documents (see the log)", err=True)
    if stopped:
        typer.echo(f"stopped: continue with --resume (checkpoint {checkpoint})", err=True)
        raise typer.Exit(130)


async def run_backfill(
    settings: Settings,
    ms: MappingSet,
    options: BackfillOptions,
    *,
    database_url: str,
    redis_url: str,
    legacy_root: Path | None = None,
    mongo_url: str | None = None,
    mongo_db: Any = None,
    max_lag: int = 100_000,
    stores: LegacyStores | None = None,
    parent_wait_s: float = 30.0,
) -> tuple[Checkpoint, Backfill | ProcessBackfill]:
    """Run one backfill with the given services (the CLI's core; the demo calls it too).

    With `--direct` and more than one process (`options.processes`, see processes.py) the
    stores are opened by each process from `legacy_root` / `mongo_url`: `stores` and
    `mongo_db` objects cannot be shared across processes and are refused."""
    procs = planned_processes(options)
    if procs > 1:
        if stores is not None or mongo_db is not None:
            raise ConfigError(
                "a backfill of several processes opens its stores in each process: pass "
                "legacy_root / mongo_url rather than store objects, or use one process"
            )
        return await _run_processes(ms, dataclasses.replace(options, processes=procs),
                                    database_url=database_url, legacy_root=legacy_root,
                                    mongo_url=mongo_url)  # fmt: skip
    options = dataclasses.replace(options, processes=1)
    stores = stores or open_stores(ms, root=legacy_root, mongo_db=mongo_db, mongo_url=mongo_url)
    if not stores.stores:
        raise ConfigError(f"no entity of {ms.path.name} has a source: section to read from")
    pool = await open_pool(database_url, max_size=options.workers + 1, name="dualsync-backfill")
    client = aredis.Redis.from_url(redis_url) if options.mode == "stream" else None
    try:
        async with pool.connection() as conn:
            ms.bind_enum_labels(await load_enum_labels(conn, ms))
        sink: Sink
        if client is None:
            sink = DirectSink(pool, ms)
            publisher = None
        else:
            publisher = Publisher(client, source=f"{settings.source}-backfill",
                                  prefix=settings.prefix, shards=settings.shards,
                                  max_payload_bytes=settings.max_payload_bytes)  # fmt: skip
            sink = StreamSink(publisher, client, ms, prefix=settings.prefix,
                              shards=settings.shards, max_lag=max_lag,
                              parent_wait_s=parent_wait_s)  # fmt: skip
        job = Backfill(ms, dict(stores.stores), sink, options)
        try:
            cp = await _until_done_or_signalled(job)
        finally:
            if publisher is not None:
                await publisher.aclose()
        return cp, job
    finally:
        await stores.aclose()
        if client is not None:
            await client.aclose()
        await pool.close()


async def _run_processes(
    ms: MappingSet,
    options: BackfillOptions,
    *,
    database_url: str,
    legacy_root: Path | None,
    mongo_url: str | None,
) -> tuple[Checkpoint, ProcessBackfill]:
    """`--direct` over several forked processes, each with its own stores, pool and sink."""

    def parent_stores() -> LegacyStores:
        opened = open_stores(ms, root=legacy_root, mongo_url=mongo_url)
        if not opened.stores:
            raise ConfigError(f"no entity of {ms.path.name} has a source: section to read from")
        return opened

    @contextlib.asynccontextmanager
    async def child() -> AsyncIterator[tuple[dict[str, LegacyStore], CountingSink]]:
        stores = open_stores(ms, root=legacy_root, mongo_url=mongo_url)
        pool = await open_pool(database_url, max_size=options.workers + 1,
                               name="dualsync-backfill")  # fmt: skip
        try:
            async with pool.connection() as conn:
                ms.bind_enum_labels(await load_enum_labels(conn, ms))
            yield dict(stores.stores), DirectSink(pool, ms)
        finally:
            await stores.aclose()
            await pool.close()

    job = ProcessBackfill(ms, parent_stores, child, options)
    return await _until_done_or_signalled(job), job


async def _until_done_or_signalled(job: Backfill | ProcessBackfill) -> Checkpoint:
    """Run `job`; SIGINT/SIGTERM stop it at a recorded chunk; its progress display closes."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, job.stop)
    try:
        return await job.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        job.progress.close()
