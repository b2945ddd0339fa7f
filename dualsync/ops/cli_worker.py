"""`dualsync worker`: run the apply workers (arq-hosted) on the configured services."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer

from dualsync.ops.cli_options import (
    MongoOption,
    mapping_path,
)
from dualsync.ops.services import open_services
from dualsync.ops.verify.schedule import scheduled_verify
from dualsync.producers.stores import open_stores
from dualsync.schema.mapping import load_mapping
from dualsync.settings import get_settings
from dualsync.worker.config import WorkerConfig, default_consumer_name
from dualsync.worker.context import StartOptions
from dualsync.worker.run import run_arq, run_until_idle


def worker(
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="Entity mapping YAML (default: DUALSYNC_MAPPING).", exists=True, dir_okay=False
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Consumer loops in this process.")
    ] = 1,
    shards: Annotated[
        int | None, typer.Option(min=1, help="Stream shards (default: DUALSYNC_SHARDS).")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Events per batch at most.")
    ] = 500,
    linger_ms: Annotated[int, typer.Option(min=0, help="Wait this long to fill a batch.")] = 5,
    consumer_name: Annotated[
        str | None, typer.Option(help="Consumer name (default: host-pid).")
    ] = None,
    claim_idle_ms: Annotated[
        int, typer.Option(min=100, help="Reclaim entries idle this long.")
    ] = 60_000,
    max_deliveries: Annotated[
        int, typer.Option(min=1, help="Deliveries before dead-lettering.")
    ] = 5,
    redis_outage_s: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="Ride out a Redis outage this long (seconds), then stop with a non-zero exit.",
        ),
    ] = 60.0,
    until_idle: Annotated[
        float | None,
        typer.Option(help="Exit once the streams are drained and idle this many seconds."),
    ] = None,
    legacy_root: Annotated[
        Path | None,
        typer.Option(
            help="Folder the mapping's relative source paths start from, for re-reading "
            "reference events (default: the mapping's folder)."
        ),
    ] = None,
    mongo: MongoOption = None,
    verify_every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Run a sampled verify of every entity with a source this often (seconds), "
            "one run at a time across all workers; 0 turns it off.",
        ),
    ] = 300.0,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Serve Prometheus /metrics and /healthz on this port; 0 turns it off "
            "(default: DUALSYNC_METRICS_PORT, else off).",
        ),
    ] = None,
    metrics_host: Annotated[
        str | None,
        typer.Option(
            help="Address to serve metrics on (default: DUALSYNC_METRICS_HOST, "
            "127.0.0.1; 0.0.0.0 in a container)."
        ),
    ] = None,
) -> None:
    """Apply change events from the shard streams to PostgreSQL until SIGTERM."""
    settings = get_settings()
    path = mapping_path(mapping, settings)
    config = WorkerConfig(
        prefix=settings.prefix,
        shards=shards or settings.shards,
        consumer_name=consumer_name or default_consumer_name(),
        concurrency=concurrency,
        batch_size=batch_size,
        linger_ms=linger_ms,
        claim_idle_ms=claim_idle_ms,
        max_deliveries=max_deliveries,
        redis_outage_s=redis_outage_s,
        max_payload_bytes=settings.max_payload_bytes,
        require_signature=settings.require_signature,
        mapping_paths=(path,),
    )
    keys = {s: k.get_secret_value().encode() for s, k in settings.signing_keys.items()}
    # Reference events (payloads over the size limit) are re-read from the legacy store
    # through the adapters the mapping's `source:` sections describe.
    ms = load_mapping(path)
    stores = open_stores(ms, root=legacy_root, mongo_url=mongo or settings.mongo_url)
    with open_services(settings, wait_for_redis=True) as svc, contextlib.closing(stores):
        legacy = stores if stores.stores else None
        job = scheduled_verify(settings, ms, stores, svc.database_url, svc.redis_url)
        opts = StartOptions(config, svc.database_url, svc.redis_url, keys, legacy=legacy,
                            verify_job=job if stores.stores else None,
                            verify_every_s=verify_every,
                            metrics_port=settings.metrics_port if metrics_port is None
                            else metrics_port,
                            metrics_host=metrics_host or settings.metrics_host)  # fmt: skip
        if until_idle is not None:
            wctx = asyncio.run(run_until_idle(opts, until_idle))
            typer.echo(" ".join(f"{k}={v}" for k, v in wctx.stats.as_dict().items()))
        else:
            run_arq(opts)
