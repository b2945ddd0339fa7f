"""`dualsync scan`: publish the changes of JSON sources whose app cannot publish them itself."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from dualsync.errors import ConfigError
from dualsync.ops.cli_options import (
    EntityOption,
    LegacyRootOption,
    MappingOption,
    mapping_path,
)
from dualsync.ops.services import open_services
from dualsync.producers.builder import EventSpec
from dualsync.producers.publisher import Publisher
from dualsync.producers.scanner import PassResult, Scanner, ScanState
from dualsync.producers.scanner.watch import watch
from dualsync.producers.stores import JsonDirStore, JsonFileStore, JsonLinesStore, open_stores
from dualsync.producers.vector_payload import BinaryVectors
from dualsync.redisconn import AnyRedis, connect
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.settings import Settings, get_settings

__all__ = ["FILE_KINDS", "make_scanners", "scan"]

#: the sources a scan reads; an app on MongoDB publishes its own events
FILE_KINDS = frozenset({"json_dir", "json_file", "json_lines"})


def scan(
    mapping: MappingOption = None,
    entity: EntityOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="One pass, then exit (the default).")
    ] = False,
    watch_: Annotated[
        bool,
        typer.Option("--watch", help="Keep watching: file notifications plus periodic rescans."),
    ] = False,
    rescan_every: Annotated[
        float, typer.Option(min=1.0, help="With --watch, a full rescan this often (seconds).")
    ] = 60.0,
    legacy_root: LegacyRootOption = None,
    reset: Annotated[
        bool, typer.Option(help="Forget what earlier scans published (republish everything).")
    ] = False,
    baseline: Annotated[
        bool,
        typer.Option(
            help="Record the current records as published, publishing nothing: run it just "
            "before `dualsync backfill`, then `scan --watch` publishes only later changes."
        ),
    ] = False,
) -> None:
    """Detect created, changed and deleted records in the mapping's JSON sources and
    publish their events: each change once, also across restarts (state in Redis)."""
    if once and watch_:
        raise ConfigError("--once and --watch exclude each other")
    if baseline and watch_:
        raise ConfigError("--baseline is one pass: run it, then the backfill, then --watch")
    settings = get_settings()
    path = mapping_path(mapping, settings)
    ms = load_mapping(path)
    with open_services(settings, need_pg=False) as svc:
        results = asyncio.run(
            _run(
                settings,
                ms,
                svc.redis_url,
                tuple(entity or ()),
                legacy_root,
                watching=watch_,
                rescan_every_s=rescan_every,
                reset=reset,
                baseline=baseline,
            )
        )
    for r in results.values():
        typer.echo(
            f"{r.entity:<24} {r.upserts:>7} upserts {r.deletes:>6} deletes "
            f"{r.unchanged:>8} unchanged {len(r.skipped):>4} skipped"
        )
        for where, why in list(r.skipped.items())[:5]:
            typer.echo(f"skipped: {r.entity} {where}: {why}", err=True)


def make_scanners(
    ms: MappingSet,
    client: AnyRedis,
    publisher: Publisher,
    prefix: str,
    *,
    entities: tuple[str, ...] = (),
    legacy_root: Path | None = None,
) -> list[Scanner]:
    """A scanner for every entity whose source is a JSON file kind."""
    stores = open_stores(ms, root=legacy_root, kinds=FILE_KINDS)
    picked = {n: s for n, s in stores.stores.items() if not entities or n in entities}
    unknown = sorted(set(entities) - set(stores.stores))
    if unknown:
        raise ConfigError(f"no JSON source for {', '.join(unknown)} in {ms.path.name}")
    files = {
        n: s
        for n, s in picked.items()
        if isinstance(s, JsonDirStore | JsonFileStore | JsonLinesStore)
    }
    if not files:
        raise ConfigError(
            f"nothing to scan in {ms.path.name}: scanning reads JSON sources (json_dir, "
            "json_file, json_lines); an app on MongoDB publishes its own events"
        )
    vectors = BinaryVectors(ms)

    async def publish(specs: list[EventSpec]) -> Any:
        """Publish with embeddings as binary vectors (vector_payload.py)."""
        return await publisher.publish_many([vectors.spec(s) for s in specs])

    return [
        Scanner(
            store,
            ScanState(client, prefix, name),
            publish,
            app_versions=ms.entity(name).version_field is not None,
        )
        for name, store in files.items()
        if isinstance(store, JsonDirStore | JsonFileStore | JsonLinesStore)
    ]


async def _run(
    settings: Settings,
    ms: MappingSet,
    redis_url: str,
    entities: tuple[str, ...],
    legacy_root: Path | None,
    *,
    watching: bool,
    rescan_every_s: float,
    reset: bool,
    baseline: bool = False,
) -> dict[str, PassResult]:
    client = connect(redis_url)
    publisher = Publisher.from_settings(settings, client)
    totals: dict[str, PassResult] = {}

    def add(r: PassResult) -> None:
        t = totals.setdefault(r.entity, PassResult(r.entity))
        t.upserts += r.upserts
        t.deletes += r.deletes
        t.unchanged = r.unchanged
        t.skipped.update(r.skipped)

    try:
        scanners = make_scanners(ms, client, publisher, settings.prefix, entities=entities,
                                 legacy_root=legacy_root)  # fmt: skip
        if reset:
            for s in scanners:
                await s.state.reset()
        if not watching:
            for s in scanners:
                add(await (s.baseline() if baseline else s.scan()))
            return totals
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await watch(scanners, stop, rescan_every_s=rescan_every_s, on_pass=add)
        return totals
    finally:
        await publisher.aclose()
        await client.aclose()
