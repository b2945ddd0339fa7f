"""Vector apply throughput: dovvy's `content_embeddings` (vector(1536)) through the worker vs COPY.

    python -m bench.vectors [--events N] [--batch-size N] [--rounds N] [--processes N]

Against the same servers (embedded unless DATABASE_URL / REDIS_URL are set), dovvy's
migrations (the HNSW index is a post-load migration and is not built: a bulk load):
- worker: `content_embeddings` upserts published to the streams, then drained by one
  worker process (two consumers: decode, map, COPY to staging, version gate, upsert,
  ack), timed from its first batch to its last;
- copy: the same rows, mapped before the clock starts, in one binary COPY straight into
  `content_embeddings` (pgvector's binary dumper): what Postgres takes, nothing more;
- gated: the same mapped rows the way apply's fair ceiling writes them (bench._ceiling:
  batch windows, a binary COPY to a temp staging table, the row_state gate, one
  `INSERT ... ON CONFLICT`): what Postgres takes for an idempotent, gated upsert, with no
  Redis and no parsing. Each vector is written twice (staging, then the table) and the
  gate adds its row: this is the most a worker that stages every row could reach;
- apply alone: the same mapped rows through dualsync's own `apply_batch`, window by
  window, with no Redis and no parsing. New keys skip staging (consumers/fresh.py): the
  gate's rows are staged, the rows themselves COPYed into the table, so each vector is
  written once. This is what the worker's Postgres side costs, beside the COPY;
- binary: the same chunks with each embedding published as a BSON binary vector
  (`$binary` subtype 9, float32), as a MongoDB app storing `BinData` vectors sends them:
  no JSON numbers to parse (dovvy itself keeps JSON arrays in files, so this is the figure
  of another kind of app, beside dovvy's);
- processes: both again, drained by `--processes` worker processes of one consumer each
  (default 2, one per core here): parsing 1536 numbers is Python's work, which more
  processes share out, and Postgres's share of the machine shrinks as they do.
Recorded under `vectors`: `events_per_s`, `copy_per_s`, `ratio_to_copy` (issue target
>= 0.6; dovvy's JSON arrays, one process), `gated_per_s`, `gated_ratio_to_copy`,
`ratio_to_gated`, `binary_ratio_to_gated`, `apply_alone_per_s`,
`apply_alone_ratio_to_copy`, `binary_events_per_s`, `binary_ratio_to_copy`,
`processes`, `processes_events_per_s`, `processes_ratio_to_copy`,
`binary_processes_events_per_s`, `binary_processes_ratio_to_copy`; each the median
of `--rounds`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import psycopg
from bson.binary import Binary, BinaryVectorDtype
from psycopg import sql

from bench._ceiling import windowed
from bench._common import (
    best_of,
    database_url,
    freeze_workload,
    now,
    publish_fresh,
    record,
    redis_url,
)
from bench.apply import Window, drain_in_processes
from dualsync.consumers.apply import apply_batch
from dualsync.consumers.change import Change, in_key_order
from dualsync.consumers.pool import configure_connection
from dualsync.gctune import fewer_collections
from dualsync.producers import EventSpec
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.schema.migrate import MigrationSet, Migrator, core_set
from dualsync.worker.config import WorkerConfig
from dualsync.worker.context import StartOptions
from dualsync.worker.run import run_until_idle
from examples.dovvy.generator import generate

APP = Path(__file__).resolve().parent.parent / "examples" / "dovvy"
ENTITY = "content_embeddings"
PREFIX = "bvec"
TRUNCATE = "truncate content_embeddings, dualsync.row_state"


def workload(events: int) -> list[EventSpec]:
    """`events` distinct chunks (one upsert each), as dovvy's ingestion writes them."""
    docs = [d for d in generate(events) if d.entity == ENTITY]
    return [EventSpec(ENTITY, d.key, "upsert", d.doc, d.version) for d in docs]


def as_binary(specs: list[EventSpec]) -> list[EventSpec]:
    """The same events with each embedding a BSON binary vector (float32)."""
    out = []
    for s in specs:
        assert s.payload is not None  # noqa: S101 - every chunk is an upsert
        vec = Binary.from_vector(s.payload["embedding"], BinaryVectorDtype.FLOAT32)
        out.append(dataclasses.replace(s, payload={**s.payload, "embedding": vec}))
    return out


async def publish(db: str, url: str, specs: list[EventSpec]) -> None:
    """Empty the table and the streams, then publish `specs` (200 a round trip: 33 KB each)."""
    await publish_fresh(db, url, specs, truncate=TRUNCATE, prefix=PREFIX, chunk=200)


async def worker(db: str, url: str, ms: MappingSet, specs: list[EventSpec], batch: int) -> float:
    """Publish everything, then time one worker process (two consumers) draining it."""
    await publish(db, url, specs)
    cfg = WorkerConfig(
        prefix=PREFIX, shards=4, consumer_name="bvec", batch_size=batch, block_ms=50, concurrency=2
    )
    wctx = await run_until_idle(StartOptions(cfg, db, url, mappings=ms), idle_s=0.3)
    window: Window = (wctx.stats.first_batch_at, wctx.stats.last_batch_done)
    return window[1] - window[0]


async def processes(db: str, url: str, specs: list[EventSpec], batch: int, n: int) -> float:
    """Publish everything, then time `n` worker processes draining it together."""
    await publish(db, url, specs)
    return await drain_in_processes(db, url, batch, n, mapping=APP / "mapping.yaml",
                                    prefix=PREFIX)  # fmt: skip


async def copy(db: str, ms: MappingSet, specs: list[EventSpec]) -> float:
    """One binary COPY of the mapped rows into the target table."""
    em = ms.entity(ENTITY)
    rows: list[tuple[Any, ...]] = [
        em.to_rows(s.key, s.payload).values for s in specs if s.payload is not None
    ]
    types = ["uuid", "text", "text", "vector", "jsonb", "timestamptz"]
    stmt = sql.SQL("copy {} ({}) from stdin (format binary)").format(
        sql.Identifier(em.schema, em.table),
        sql.SQL(", ").join(map(sql.Identifier, em.column_names)),
    )
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await configure_connection(conn)
        await conn.execute(TRUNCATE)
        t0 = now()
        async with conn.transaction(), conn.cursor() as cur, cur.copy(stmt) as cp:
            cp.set_types(types)
            for r in rows:
                await cp.write_row(r)
        return now() - t0


async def apply_alone(db: str, ms: MappingSet, specs: list[EventSpec], batch: int) -> float:
    """The mapped rows through `apply_batch` itself, window by window: no Redis, no parsing."""
    em = ms.entity(ENTITY)
    changes = in_key_order(
        Change(
            ENTITY,
            s.key,
            s.version or 0,
            deleted=False,
            event_id=f"e{i}",
            rows=em.to_rows(s.key, s.payload),
        )
        for i, s in enumerate(specs)
        if s.payload is not None
    )
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await configure_connection(conn)
        await conn.execute(TRUNCATE)
        with fewer_collections():
            t0 = now()
            for i in range(0, len(changes), batch):
                await apply_batch(conn, ms, changes[i : i + batch])
            return now() - t0


async def run(events: int, batch: int, rounds: int, procs: int = 2) -> dict[str, Any]:
    """Measure both and return events/s and the ratio."""
    ms = load_mapping(APP / "mapping.yaml")
    specs = workload(events)
    binary = as_binary(specs)
    freeze_workload()
    with tempfile.TemporaryDirectory() as tmp, database_url(Path(tmp)) as db, redis_url() as url:
        Migrator(db, [core_set(), MigrationSet.from_dir(APP / "migrations")]).up()
        await worker(db, url, ms, specs[: max(events // 10, 1)], batch)  # warm-up
        t_worker = await best_of(rounds, lambda: worker(db, url, ms, specs, batch))
        t_copy = await best_of(rounds, lambda: copy(db, ms, specs))
        t_gated = await best_of(
            rounds, lambda: windowed(db, ms, specs, batch, gated=True, truncate=TRUNCATE)
        )
        t_alone = await best_of(rounds, lambda: apply_alone(db, ms, specs, batch))
        t_binary = await best_of(rounds, lambda: worker(db, url, ms, binary, batch))
        t_procs = await best_of(rounds, lambda: processes(db, url, specs, batch, procs))
        t_bin_procs = await best_of(rounds, lambda: processes(db, url, binary, batch, procs))
    n = len(specs)
    result = {
        "events": n,
        "batch_size": batch,
        "dims": 1536,
        "events_per_s": round(n / t_worker),
        "copy_per_s": round(n / t_copy),
        "ratio_to_copy": round(t_copy / t_worker, 3),
        "gated_per_s": round(n / t_gated),
        "gated_ratio_to_copy": round(t_copy / t_gated, 3),
        "ratio_to_gated": round(t_gated / t_worker, 3),
        "binary_ratio_to_gated": round(t_gated / t_binary, 3),
        "apply_alone_per_s": round(n / t_alone),
        "apply_alone_ratio_to_copy": round(t_copy / t_alone, 3),
        "binary_events_per_s": round(n / t_binary),
        "binary_ratio_to_copy": round(t_copy / t_binary, 3),
        "processes": procs,
        "processes_events_per_s": round(n / t_procs),
        "processes_ratio_to_copy": round(t_copy / t_procs, 3),
        "binary_processes_events_per_s": round(n / t_bin_procs),
        "binary_processes_ratio_to_copy": round(t_copy / t_bin_procs, 3),
    }
    print(
        f"{ENTITY} (vector(1536)): worker {result['events_per_s']:,} events/s; binary COPY "
        f"{result['copy_per_s']:,} rows/s -> ratio {result['ratio_to_copy']:.2f} (target >= 0.6; "
        f"a staged, gated upsert of the mapped rows alone reaches "
        f"{result['gated_ratio_to_copy']:.2f}, dualsync's apply_batch alone "
        f"{result['apply_alone_ratio_to_copy']:.2f}); "
        f"as BSON binary vectors {result['binary_events_per_s']:,} events/s -> ratio "
        f"{result['binary_ratio_to_copy']:.2f}; with {procs} worker processes: ratio "
        f"{result['processes_ratio_to_copy']:.2f} (binary "
        f"{result['binary_processes_ratio_to_copy']:.2f})"
    )
    return result


def main() -> None:
    """CLI entry: run and record under `vectors`."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2,
                    help="worker processes of the scale-out figure (2)")  # fmt: skip
    args = ap.parse_args()
    if min(args.events, args.batch_size, args.rounds, args.processes) < 1:
        ap.error("--events, --batch-size, --rounds and --processes must be at least 1")
    record("vectors", asyncio.run(run(args.events, args.batch_size, args.rounds, args.processes)))


if __name__ == "__main__":
    main()
