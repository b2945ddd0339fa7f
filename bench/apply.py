"""Apply throughput through the real worker vs the COPY ceilings and a naive per-event loop.

    python -m bench.apply [--events N] [--batch-size N [N ...]] [--rounds N] [--processes N]
    python -m bench.apply --cluster [bench.apply_cluster's options: --processes 1,2,4 ...]

Workload and baselines: bench/_apply_load.py. Measured in one run against the same
servers (embedded unless DATABASE_URL / REDIS_URL are set):
- worker: events published to the streams, then drained by the real consumer code
  (decode, map, collapse, COPY to staging, version gate, upsert/delete, ack) in one
  process with `--concurrency` consumers (default 2), timed from its first batch to its
  last;
- workers: the same, with `--processes` worker processes of one consumer each (scale-out
  as deployed: more consumers in the group);
- ceiling: the same events cut into the worker's batch windows, each collapsed per key
  and applied with binary COPY and one upsert and one delete per table (bench/_ceiling.py);
  gated ceiling: the same plus the row_state version gate;
- final rows (the old, unreachable figure: the whole run collapsed once), naive (one
  statement per event, over the first `NAIVE_EVENTS` events only: it is slow and its cost
  per event does not depend on the run's length), and a no-churn control (one event per
  key) against the gated ceiling.
Each figure is the median of `--rounds`; ratios are events/s over the same input events.
Recorded under `apply.batch_<n>` for every `--batch-size` (default 500 and 5000).
`--cluster` runs bench/apply_cluster.py instead (a real Redis Cluster, 1, 2 and 4 worker
processes beside a single Redis), with the rest of the command line as its options.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from bench._apply_load import DATA, TRUNCATE, final_rows, naive, unique_workload, workload
from bench._ceiling import windowed
from bench._common import best_of, database_url, publish_fresh, record, redis_url
from dualsync.producers import EventSpec
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.schema.migrate import Migrator, core_set
from dualsync.worker.config import WorkerConfig
from dualsync.worker.context import StartOptions
from dualsync.worker.run import run_until_idle

PREFIX = "bapply"
#: the naive loop runs over at most this many of the events (see the module docstring)
NAIVE_EVENTS = 5000
Window = tuple[float, float]


def _config(batch: int, concurrency: int, name: str, prefix: str = PREFIX) -> WorkerConfig:
    return WorkerConfig(
        prefix=prefix,
        shards=4,
        consumer_name=name,
        batch_size=batch,
        block_ms=50,
        concurrency=concurrency,
    )


async def _publish(db: str, url: str, specs: list[EventSpec]) -> None:
    await publish_fresh(db, url, specs, truncate=TRUNCATE, prefix=PREFIX)


async def _drain(db: str, url: str, ms: MappingSet, cfg: WorkerConfig) -> Window:
    wctx = await run_until_idle(StartOptions(cfg, db, url, mappings=ms), idle_s=0.3)
    return wctx.stats.first_batch_at, wctx.stats.last_batch_done


#: consumers of the one-process figure (`--concurrency`; `dualsync worker --concurrency 2`):
#: two overlap one another's transactions, which pays at small batches
CONCURRENCY = 2


async def worker(
    db: str, url: str, ms: MappingSet, specs: list[EventSpec], batch: int,
    concurrency: int = CONCURRENCY,
) -> float:  # fmt: skip
    """Publish everything, then time one worker process draining it."""
    await _publish(db, url, specs)
    first, last = await _drain(db, url, ms, _config(batch, concurrency, "bench"))
    return last - first


def _process(db: str, url: str, batch: int, name: str, mapping: Path, prefix: str,
             out: Any) -> None:  # fmt: skip
    ms = load_mapping(mapping)
    out.put(asyncio.run(_drain(db, url, ms, _config(batch, 1, name, prefix))))


async def drain_in_processes(
    db: str, url: str, batch: int, n: int, *, mapping: Path, prefix: str
) -> float:
    """Time `n` worker processes (one consumer each, spawned: nothing inherited) draining
    what is in the streams of `prefix` together, from the first batch to the last."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process, args=(db, url, batch, f"p{i}", mapping, prefix, out))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    windows: list[Window] = [out.get() for _ in procs]
    for p in procs:
        p.join()
    # CLOCK_MONOTONIC is system-wide on Linux: windows of different processes compare.
    return max(w[1] for w in windows) - min(w[0] for w in windows if w[0])


async def workers(db: str, url: str, specs: list[EventSpec], batch: int, n: int) -> float:
    """Publish everything, then time `n` worker processes draining it together."""
    await _publish(db, url, specs)
    return await drain_in_processes(db, url, batch, n, mapping=DATA / "shop.yaml", prefix=PREFIX)


async def run(
    events: int, batch: int, rounds: int, processes: int, concurrency: int = CONCURRENCY
) -> dict[str, Any]:
    """Measure everything at one batch size and return events/s and ratios."""
    figures: dict[str, Any] = (await run_sizes(events, [batch], rounds, processes, concurrency))[
        f"batch_{batch}"
    ]
    return figures


async def _measure(
    db: str, url: str, ms: MappingSet, events: int, batch: int, rounds: int, processes: int,
    concurrency: int,
) -> dict[str, Any]:  # fmt: skip
    specs = workload(events)
    unique = unique_workload(events // 2)
    await worker(db, url, ms, specs[: events // 10], batch, concurrency)  # warm-up
    t_worker = await best_of(rounds, lambda: worker(db, url, ms, specs, batch, concurrency))
    t_workers = await best_of(rounds, lambda: workers(db, url, specs, batch, processes))
    t_ceiling = await best_of(
        rounds, lambda: windowed(db, ms, specs, batch, gated=False, truncate=TRUNCATE)
    )
    t_gated = await best_of(
        rounds, lambda: windowed(db, ms, specs, batch, gated=True, truncate=TRUNCATE)
    )
    t_final = await best_of(rounds, lambda: final_rows(db, ms, specs))
    head = specs[:NAIVE_EVENTS]
    t_naive = await naive(db, ms, head) * len(specs) / len(head)  # slow: one round
    u_worker = await best_of(rounds, lambda: worker(db, url, ms, unique, batch, concurrency))
    u_gated = await best_of(
        rounds, lambda: windowed(db, ms, unique, batch, gated=True, truncate=TRUNCATE)
    )
    return {
        "events": events,
        "batch_size": batch,
        "events_per_s": round(events / t_worker),
        "ceiling_events_per_s": round(events / t_ceiling),
        "gated_events_per_s": round(events / t_gated),
        "final_rows_events_per_s": round(events / t_final),
        "naive_events_per_s": round(events / t_naive),
        "ratio_to_ceiling": round(t_ceiling / t_worker, 3),
        "ratio_to_gated": round(t_gated / t_worker, 3),
        "ratio_to_final_rows": round(t_final / t_worker, 3),
        "ratio_to_naive": round(t_naive / t_worker, 3),
        "concurrency": concurrency,
        "processes": processes,
        "processes_events_per_s": round(events / t_workers),
        "processes_ratio_to_ceiling": round(t_ceiling / t_workers, 3),
        "processes_ratio_to_gated": round(t_gated / t_workers, 3),
        "no_churn_ratio_to_gated": round(u_gated / u_worker, 3),
    }


def _show(r: dict[str, Any]) -> None:
    print(
        f"batch {r['batch_size']:,}: worker (1 process, {r['concurrency']} consumers) "
        f"{r['events_per_s']:,} events/s; "
        f"ceiling {r['ceiling_events_per_s']:,}/s -> ratio {r['ratio_to_ceiling']:.2f} "
        f"(target >= 0.5); gated ceiling {r['gated_events_per_s']:,}/s -> ratio "
        f"{r['ratio_to_gated']:.2f}; final rows {r['final_rows_events_per_s']:,}/s -> ratio "
        f"{r['ratio_to_final_rows']:.2f}; naive {r['naive_events_per_s']:,}/s -> worker is "
        f"{r['ratio_to_naive']:.1f}x\n"
        f"  {r['processes']} worker processes: {r['processes_events_per_s']:,} events/s -> "
        f"ratio {r['processes_ratio_to_ceiling']:.2f} (gated "
        f"{r['processes_ratio_to_gated']:.2f}); no-churn control: ratio to gated "
        f"{r['no_churn_ratio_to_gated']:.2f}"
    )


async def run_sizes(
    events: int, batches: list[int], rounds: int, processes: int, concurrency: int = CONCURRENCY
) -> dict[str, Any]:
    """Measure at every batch size against one pair of servers: {"batch_<n>": figures}."""
    ms = load_mapping(DATA / "shop.yaml")
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, database_url(Path(tmp)) as db, redis_url() as url:
        Migrator(db, [core_set()]).up()
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("drop schema if exists shop cascade")
            conn.execute((DATA / "shop.sql").read_text())
        for batch in batches:
            out[f"batch_{batch}"] = r = await _measure(
                db, url, ms, events, batch, rounds, processes, concurrency
            )
            _show(r)
    return out


def main() -> None:
    """CLI entry: run and record under `apply` (or, with `--cluster`, `apply_cluster`)."""
    if "--cluster" in sys.argv[1:]:
        rest = [a for a in sys.argv[1:] if a != "--cluster"]
        from bench import apply_cluster  # noqa: PLC0415 - only this mode needs the cluster

        apply_cluster.main(rest)
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--batch-size", type=int, nargs="+", default=[500, 5000])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument(
        "--concurrency", type=int, default=CONCURRENCY,
        help="consumers of the one-process figure (default 2)",
    )  # fmt: skip
    ap.add_argument(
        "--cluster", action="store_true", help="run bench.apply_cluster with the other options"
    )
    args = ap.parse_args()
    sizes = asyncio.run(
        run_sizes(args.events, args.batch_size, args.rounds, args.processes, args.concurrency)
    )
    record("apply", sizes)


if __name__ == "__main__":
    main()
