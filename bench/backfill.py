"""Backfill throughput per kind of legacy store, through the stream and `--direct`.

    python -m bench.backfill [--docs N] [--rounds N] [--processes auto|N]

For a JSON directory (donna's users), one JSON file (tzurot's personalities) and MongoDB
(panamia's users, on mongomock-motor: the figure says what dualsync costs above an
in-memory store, not what a real server gives), measured in one run against the same
servers (embedded unless DATABASE_URL / REDIS_URL are set):
- read: iterating the adapter's records alone (list, read, parse; no mapping, no I/O out),
  the baseline each ratio is taken against;
- stream: the backfill publishing snapshot events to the streams (mapping validation and
  checkpoints included; the workers apply them separately);
- direct: the backfill applying through the batch path without Redis (map, COPY, gate),
  as `dualsync backfill --direct` runs it: for the JSON directory over `--processes`
  forked processes (auto: one per core, at most 4; recorded as `processes`), each opening
  the store from the folder itself; for the others in one process (their stores are
  objects of this process: mongomock cannot cross a fork);
- direct_1proc (JSON directory): the same in one process, so both figures are on record;
- map, apply (JSON directory): where a direct run's time goes, each alone in one process
  over records read before the clock starts: `map` is the mapping (`to_rows`) of every
  record; `apply` is the batch path (`consumers.apply_batch`: COPY to staging, the gate,
  upserts, child replacement) over rows mapped before the clock starts, chunks of 1,000,
  i.e. Postgres's share and psycopg's COPY. A direct run costs about read + map + apply
  of CPU, which `--processes` can spread over the cores, but not below their sum divided
  by the cores (Postgres runs on the same ones).
Each figure is the median of `--rounds` and is docs/s. `direct_ratio` (top level) is the
JSON directory's direct / read: the issue's target is >= 0.5 (the backfill adds at most
as much time as reading and parsing the files takes); `direct_ratio_1proc` is the same
in one process. The baseline reads in one process, as the adapter does.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aredis

from bench._common import best_of, database_url, record, redis_url
from dualsync.consumers.apply import apply_batch
from dualsync.consumers.change import Change, collapse
from dualsync.consumers.pool import configure_connection
from dualsync.logging import configure_logging
from dualsync.ops.cli_backfill import run_backfill
from dualsync.ops.databases import fresh_database
from dualsync.producers.backfill import BackfillOptions
from dualsync.producers.backfill.processes import auto_processes
from dualsync.producers.clock import uuid7
from dualsync.producers.stores import LegacyStores, open_stores
from dualsync.schema.legacy import LegacyStore
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.schema.migrate import MigrationSet, Migrator, core_set
from dualsync.settings import Settings, get_settings
from examples._stores import write_mongo, write_tree
from examples.donna.generator import generate as donna
from examples.panamia.generator import generate as panamia
from examples.tzurot.generator import generate as tzurot

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CASES = {  # name -> (app, entity, generator)
    "json_dir": ("donna", "users", donna),
    "json_file": ("tzurot", "personalities", tzurot),
    "mongo_mock": ("panamia", "users", panamia),
}


async def _read(store: LegacyStore) -> float:
    t0 = time.perf_counter()
    n = 0
    async for chunk in store.iter_records(chunk=1000):
        n += len(chunk)
    return time.perf_counter() - t0


async def _records(store: LegacyStore) -> list[Any]:
    return [r async for chunk in store.iter_records(chunk=1000) for r in chunk]


async def _map(ms: MappingSet, entity: str, store: LegacyStore) -> float:
    records = await _records(store)
    to_rows = ms.entity(entity).to_rows
    t0 = time.perf_counter()
    for r in records:
        to_rows(r.key, r.doc)
    return time.perf_counter() - t0


async def _apply(db: str, ms: MappingSet, entity: str, store: LegacyStore) -> float:
    to_rows = ms.entity(entity).to_rows
    changes = [
        Change(entity, r.key, 1, deleted=False, event_id=uuid7(), rows=to_rows(r.key, r.doc))
        for r in await _records(store)
    ]
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await configure_connection(conn)
        await conn.execute(
            f"truncate {ms.entity(entity).table}, dualsync.row_state cascade".encode()
        )
        t0 = time.perf_counter()
        for i in range(0, len(changes), 1000):
            await apply_batch(conn, ms, collapse(changes[i : i + 1000]))
        return time.perf_counter() - t0


async def _components(
    out: dict[str, Any],
    rounds: int,
    read_s: float,
    db: str,
    ms: MappingSet,
    entity: str,
    cold: Callable[[], LegacyStore],
) -> str:
    """Map alone and apply alone into `out`; their line of the printout."""
    n = out["docs"]
    map_s = await best_of(rounds, lambda: _map(ms, entity, cold()))
    apply_s = await best_of(rounds, lambda: _apply(db, ms, entity, cold()))
    out["map_docs_per_s"] = round(n / map_s)
    out["apply_docs_per_s"] = round(n / apply_s)
    out["map_ratio_to_read"] = round(read_s / map_s, 3)
    out["apply_ratio_to_read"] = round(read_s / apply_s, 3)
    return (
        f"   map alone {out['map_docs_per_s']:>7,}/s, apply alone {out['apply_docs_per_s']:>7,}/s"
    )


async def _case(
    name: str, docs: int, rounds: int, server: str, rurl: str, tmp: Path, processes: int
) -> dict[str, Any]:
    app, entity, gen = CASES[name]
    ms: MappingSet = load_mapping(EXAMPLES / app / "mapping.yaml")
    db = fresh_database(server, f"bench_backfill_{name}")
    Migrator(db, [core_set(), MigrationSet.from_dir(EXAMPLES / app / "migrations")]).up()
    wanted = [d for d in gen(docs, 1) if d.entity == entity]
    root = tmp / name
    mongo: Any = None
    if name == "mongo_mock":
        from mongomock_motor import AsyncMongoMockClient  # noqa: PLC0415 - bench-only

        mongo = AsyncMongoMockClient(tz_aware=True)["panamia"]
        await write_mongo(ms, wanted, mongo)
    else:
        write_tree(ms, wanted, root)
    del wanted  # the CLI holds no generated documents: neither do the measured runs

    def cold() -> LegacyStore:
        """A store opened afresh, as every CLI run opens its own: a JSON file store keeps
        the file it parsed while the file is unchanged, which would hand the next run
        (the baseline's read included) the parse for free."""
        store: LegacyStore = open_stores(ms, root=root, mongo_db=mongo)[entity]
        return store

    n = await cold().count()

    async def run(mode: str, procs: int = 1) -> float:
        async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
            await conn.execute(
                f"truncate {ms.entity(entity).table}, dualsync.row_state cascade".encode()
            )
        client = aredis.Redis.from_url(rurl)
        await client.flushdb()
        await client.aclose()
        opts = BackfillOptions(checkpoint=tmp / f"{name}-{mode}-{procs}.json", mode=mode,
                               restart=True, entities=(entity,), chunk=1000,
                               processes=procs)  # fmt: skip
        settings = Settings(prefix="bbackfill", shards=4, source="bench")
        # several processes open the store from the folder (as the CLI does), one a cold one
        where: dict[str, Any] = (
            {"legacy_root": root} if procs > 1 else {"stores": LegacyStores({entity: cold()})}
        )
        t0 = time.perf_counter()
        cp, _ = await run_backfill(settings, ms, opts, database_url=db, redis_url=rurl,
                                   **where)  # fmt: skip
        if cp.entities[entity].sent != n:
            msg = f"{name} {mode}: sent {cp.entities[entity].sent} of {n}"
            raise RuntimeError(msg)
        return time.perf_counter() - t0

    procs = processes if name == "json_dir" else 1
    read_s = await best_of(rounds, lambda: _read(cold()))
    stream_s = await best_of(rounds, lambda: run("stream"))
    direct_s = await best_of(rounds, lambda: run("direct", procs))
    out: dict[str, Any] = {
        "docs": n,
        "processes": procs,
        "read_docs_per_s": round(n / read_s),
        "stream_docs_per_s": round(n / stream_s),
        "direct_docs_per_s": round(n / direct_s),
        "stream_ratio_to_read": round(read_s / stream_s, 3),
        "direct_ratio_to_read": round(read_s / direct_s, 3),
    }
    one = ""
    if name == "json_dir":
        one += await _components(out, rounds, read_s, db, ms, entity, cold)
    if procs > 1:
        one_s = await best_of(rounds, lambda: run("direct", 1))
        out["direct_docs_per_s_1proc"] = round(n / one_s)
        out["direct_ratio_to_read_1proc"] = round(read_s / one_s, 3)
        one += (
            f"   1 process {out['direct_docs_per_s_1proc']:>7,}/s "
            f"({out['direct_ratio_to_read_1proc']:.2f})"
        )
    print(
        f"{name:<11} {n:>7} docs   read {out['read_docs_per_s']:>8,}/s   "
        f"stream {out['stream_docs_per_s']:>7,}/s ({out['stream_ratio_to_read']:.2f})   "
        f"direct x{procs} {out['direct_docs_per_s']:>7,}/s ({out['direct_ratio_to_read']:.2f})"
        + one
    )
    return out


async def run(docs: int, rounds: int, processes: int) -> dict[str, Any]:
    """Every case, keyed by store kind, and `direct_ratio` (json_dir direct / read)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        database_url(Path(tmp)) as server,
        redis_url() as rurl,
    ):
        results: dict[str, Any] = {}
        for name in CASES:
            results[name] = await _case(name, docs, rounds, server, rurl, Path(tmp), processes)
        jd = results["json_dir"]
        results["direct_ratio"] = jd["direct_ratio_to_read"]
        results["direct_processes"] = jd["processes"]
        results["direct_ratio_1proc"] = jd.get(
            "direct_ratio_to_read_1proc", jd["direct_ratio_to_read"]
        )
        print(
            f"direct_ratio (json_dir direct / read) {results['direct_ratio']:.3f} with "
            f"{jd['processes']} process(es), {results['direct_ratio_1proc']:.3f} with one  "
            "(target 0.5)"
        )
        return results


def main() -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20_000, help="documents per store (20000)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds, median reported (1)")
    ap.add_argument("--processes", default="auto",
                    help="processes of the JSON directory's direct run (auto: one per core, "
                         "at most 4, as `dualsync backfill --direct`)")  # fmt: skip
    args = ap.parse_args()
    if args.docs < 1 or args.rounds < 1:
        ap.error("--docs and --rounds must be at least 1")
    procs = auto_processes() if args.processes == "auto" else int(args.processes)
    if procs < 1:
        ap.error("--processes must be auto or at least 1")
    configure_logging(get_settings().log_format, "WARNING", force=True)
    record("backfill", asyncio.run(run(args.docs, args.rounds, procs)))


if __name__ == "__main__":
    main()
