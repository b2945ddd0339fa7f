"""The demo, step by step: legacy stores -> migrate -> backfill while the apps keep writing
-> change capture -> drained -> every entity counted on both sides -> verify, drift planted,
found and repaired (drift.py) -> one entity's reads through shadow to Postgres and rolled
back (cutover.py) -> the commands to try next (report.py).

It runs on whatever `open_services` gives (the embedded PostgreSQL and Redis by default),
in its own databases and stream prefixes, so it can be run again and again; everything it
starts is stopped before it returns.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aredis
from rich.console import Console

from dualsync.ops.cli_backfill import run_backfill
from dualsync.ops.cli_scan import make_scanners
from dualsync.ops.databases import fresh_database
from dualsync.ops.demo.apps import DemoApp
from dualsync.ops.demo.cutover import cutover_act
from dualsync.ops.demo.drift import PLANTED, plant_drift, repair_all, verify_all
from dualsync.ops.demo.live import LiveCounts, donna_writes, panamia_writes
from dualsync.ops.demo.report import Row, print_next_steps, print_report
from dualsync.producers.backfill import BackfillOptions, group_lag
from dualsync.producers.publisher import Publisher
from dualsync.producers.scanner import PassResult
from dualsync.producers.scanner.watch import watch
from dualsync.producers.stores import open_stores
from dualsync.schema.streams import dlq_key
from dualsync.settings import Settings
from dualsync.worker import lifecycle
from dualsync.worker.config import WorkerConfig
from dualsync.worker.context import StartOptions, WorkerContext
from examples._stores import write_mongo, write_tree
from examples.donna.generator import generate as donna_docs
from examples.panamia.generator import generate as panamia_docs

__all__ = ["DemoOptions", "run_demo"]

SHARDS = 4
QUIET_CHECKS = 3
#: the donna entity whose reads the demo moves to Postgres and back
CUTOVER_ENTITY = "users"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """Size and place of the demo."""

    home: Path
    scale: int = 2000
    seed: int = 7
    share: float = 0.05
    #: the demo's databases are `<database_prefix>_donna` and `<database_prefix>_panamia`
    database_prefix: str = "dualsync_demo"
    #: stream keys of the demo start with `<stream_prefix>-<app>:`
    stream_prefix: str = "demo"
    #: the PostgreSQL is the embedded one (what the closing hints say to set)
    embedded_pg: bool = True


@dataclass(slots=True)
class _Run:
    console: Console
    started: float = field(default_factory=time.monotonic)

    def step(self, text: str) -> None:
        self.console.print(f"[bold cyan]{time.monotonic() - self.started:6.1f}s[/]  {text}")


async def run_demo(database_url: str, redis_url: str, opts: DemoOptions,
                   console: Console) -> bool:  # fmt: skip
    """Run the whole story; True when both sides agree for every entity."""
    run = _Run(console)
    donna = DemoApp("donna", f"{opts.stream_prefix}-donna")
    panamia = DemoApp("panamia", f"{opts.stream_prefix}-panamia")
    client = aredis.Redis.from_url(redis_url)
    workers: list[WorkerContext] = []
    try:
        for app in (donna, panamia):
            keys = [k async for k in client.scan_iter(f"{app.prefix}:*")]
            if keys:
                await client.delete(*keys)
            app.db_url = fresh_database(database_url, f"{opts.database_prefix}_{app.name}")
        root = opts.home / "demo" / "donna"
        shutil.rmtree(root, ignore_errors=True)
        n_files = sum(write_tree(donna.ms, donna_docs(opts.scale, opts.seed), root).values())
        from mongomock_motor import AsyncMongoMockClient  # noqa: PLC0415 - demo-only dependency

        mongo: Any = AsyncMongoMockClient(tz_aware=True)
        panamia.mongo_db = mongo["panamia"]
        n_docs = sum((await write_mongo(panamia.ms, panamia_docs(opts.scale, opts.seed),
                                        panamia.mongo_db)).values())  # fmt: skip
        run.step(f"legacy stores: donna {n_files:,} records as PHP's JSON files in {root}; "
                 f"panamia {n_docs:,} MongoDB documents (mongomock-motor)")  # fmt: skip
        for app in (donna, panamia):
            n = app.migrate()
            run.step(f"migrate {app.name}: {n} files (dualsync's own tables and the app's)")
        donna.stores = open_stores(donna.ms, root=root)
        panamia.stores = open_stores(panamia.ms, mongo_db=panamia.mongo_db)
        for app in (donna, panamia):
            cfg = WorkerConfig(prefix=app.prefix, shards=SHARDS, consumer_name=f"demo-{app.name}",
                               block_ms=200, linger_ms=5)  # fmt: skip
            workers.append(await lifecycle.start(
                StartOptions(cfg, app.db_url, redis_url, legacy=app.stores, mappings=app.ms)
            ))  # fmt: skip
        run.step("workers: one per app, consumer group 'apply' on 4 shard streams each")
        return await _story(run, redis_url, opts, donna, panamia, root, workers, client)
    finally:
        for w in workers:
            await lifecycle.stop(w)
        for app in (donna, panamia):
            await app.close()
        await client.aclose()


async def _story(run: _Run, redis_url: str, opts: DemoOptions,
                 donna: DemoApp, panamia: DemoApp, root: Path, workers: list[WorkerContext],
                 client: aredis.Redis) -> bool:  # fmt: skip
    rng = random.Random(opts.seed)
    assert donna.stores is not None  # noqa: S101 - set by run_demo
    app_pub = Publisher(client, source="panamia-app", prefix=panamia.prefix, shards=SHARDS)
    scan_pub = Publisher(client, source="donna-scan", prefix=donna.prefix, shards=SHARDS)
    scanners = make_scanners(donna.ms, client, scan_pub, donna.prefix, legacy_root=root)
    for s in scanners:
        await s.baseline()
    run.step("scan baseline: donna's current files recorded; later edits will be published")
    stop_watch = asyncio.Event()
    watched = {"upserts": 0, "deletes": 0}

    def seen(r: PassResult) -> None:
        watched["upserts"] += r.upserts
        watched["deletes"] += r.deletes

    watcher = asyncio.create_task(watch(scanners, stop_watch, rescan_every_s=2.0, on_pass=seen))
    live: dict[str, LiveCounts] = {}

    async def writes() -> None:
        await asyncio.sleep(0.2)
        live["donna"] = await donna_writes(root, rng, opts.share)
        live["panamia"] = await panamia_writes(panamia.mongo_db, app_pub, rng, opts.share)

    writer = asyncio.create_task(writes())
    sent = 0
    for app in (donna, panamia):
        conf = Settings(prefix=app.prefix, shards=SHARDS, source="demo")
        bopts = BackfillOptions(checkpoint=opts.home / "demo" / f"{app.name}.json",
                                restart=True, workers=2)  # fmt: skip
        cp, job = await run_backfill(conf, app.ms, bopts, database_url=app.db_url,
                                     redis_url=redis_url, stores=app.stores)  # fmt: skip
        sent += sum(e.sent for e in cp.entities.values())
        run.step(f"backfill {app.name}: {sum(e.sent for e in cp.entities.values()):,} upserts "
                 f"published through the stream while the app kept writing "
                 f"({len(job.bad)} bad documents)")  # fmt: skip
    await writer
    run.step(f"live writes: panamia edited {live['panamia'].edited} and deleted "
             f"{live['panamia'].deleted} documents and published each; donna rewrote "
             f"{live['donna'].edited} files, deleted {live['donna'].deleted}, appended "
             f"{live['donna'].appended} log lines (scan --watch publishes them)")  # fmt: skip
    await asyncio.sleep(1.0)  # let the watcher see the last notifications
    stop_watch.set()
    await asyncio.wait_for(watcher, 10)
    late = [await s.scan() for s in scanners]  # the periodic full rescan, once more
    run.step(f"scan --watch published {watched['upserts']} upserts and {watched['deletes']} "
             f"deletes as the files changed; a final rescan found "
             f"{sum(r.upserts + r.deletes for r in late)} more")  # fmt: skip
    await _drained(client, (donna.prefix, panamia.prefix))
    await app_pub.aclose()
    await scan_pub.aclose()
    run.step("drained: every stream entry applied and acknowledged")
    for app in (donna, panamia):
        app.migrate(post_load=True)
    run.step("post-load migrations: indexes built after the bulk load")
    rows = [await _row(app, name, client) for app in (donna, panamia) for name in app.ms.entities
            if app.stores and name in app.stores.stores]  # fmt: skip
    totals = {w.options.config.prefix: w.stats for w in workers}
    counted = print_report(run.console, rows, totals, time.monotonic() - run.started)
    key = os.urandom(32)  # the fingerprint key of secret columns, this run only
    if not (counted and await _verify_story(run, donna, panamia, root, redis_url, client, key)):
        return False
    cut = await cutover_act(run, donna, CUTOVER_ENTITY, redis_url, key)
    print_next_steps(
        run.console, cut, donna, root, time.monotonic() - run.started, embedded_pg=opts.embedded_pg
    )
    return cut.ok


async def _verify_story(run: _Run, donna: DemoApp, panamia: DemoApp, root: Path, redis_url: str,
                        client: aredis.Redis, key: bytes) -> bool:  # fmt: skip
    apps = [donna, panamia]
    clean = await verify_all(apps, redis_url, key)
    worst = max(r.bound for rs in clean.values() for r in rs)
    drifted = sum(r.drift for rs in clean.values() for r in rs)
    compared = sum(r.sampled for rs in clean.values() for r in rs)
    run.step(f"verify: {compared:,} records compared, {drifted} drift; every entity's drift "
             f"≤ {worst:.2%} at 95% confidence")  # fmt: skip
    for line in plant_drift(donna, panamia, root):
        run.step(f"planted: {line}")
    caught = await verify_all(apps, redis_url, key)
    for name, rs in caught.items():
        for r in rs:
            for f in r.confirmed():
                what = f" ({', '.join(f.fields)})" if f.fields else ""
                run.step(f"verify caught: {name} {r.entity} {f.key}: {f.kind}{what}")
    n = await repair_all(apps, redis_url)
    await _drained(client, (donna.prefix, panamia.prefix))
    run.step(f"repair --apply: {n} authoritative records re-published and applied")
    after = await verify_all(apps, redis_url, key)
    left = sum(r.drift for rs in after.values() for r in rs)
    ok = left == 0 and sum(len(r.confirmed()) for rs in caught.values() for r in rs) == PLANTED
    run.step("[green]verify again: clean[/]" if left == 0 else f"[red]{left} drift left[/]")
    for name, rs in after.items():
        for r in rs:
            for f in r.confirmed():
                run.step(f"[red]still drifting[/]: {name} {r.entity} {f.key}: {f.kind} {f.fields}")
    return ok


async def _drained(client: aredis.Redis, prefixes: tuple[str, ...]) -> None:
    """Until nothing is unapplied (unread or pending) for a few checks in a row."""
    quiet = 0
    deadline = time.monotonic() + 90
    while quiet < QUIET_CHECKS and time.monotonic() < deadline:
        lag = sum([await group_lag(client, p, SHARDS, "apply") for p in prefixes])
        quiet = quiet + 1 if lag == 0 else 0
        await asyncio.sleep(0.2)


async def _row(app: DemoApp, entity: str, client: aredis.Redis) -> Row:
    assert app.stores is not None  # noqa: S101 - opened before the report
    legacy = await app.stores[entity].count()
    em = app.ms.entity(entity)
    letters = [f async for f in _dlq_entities(client, app.prefix) if f == entity]
    return Row(app.name, entity, legacy, app.count(em.table), len(letters))


async def _dlq_entities(client: aredis.Redis, prefix: str) -> Any:
    for _, fields in await client.xrange(dlq_key(prefix)):
        yield fields.get(b"entity", b"").decode()
