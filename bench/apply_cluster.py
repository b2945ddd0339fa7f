"""Apply throughput on a Redis Cluster with 1, 2 and 4 worker processes, beside a single Redis.

    python -m bench.apply_cluster [--events N] [--processes 1,2,4] [--batch-size N] [--rounds N]

Services: PostgreSQL embedded unless DATABASE_URL; the single Redis embedded unless
REDIS_URL; the cluster three embedded `redis-server --cluster-enabled yes` nodes
(`dualsync.ops.embedded_cluster`) unless REDIS_CLUSTER_URL. For each Redis and each
process count the same events (bench/_apply_load.py) are published under a fresh prefix,
then drained by that many spawned worker processes (one consumer each, each with its own
client - a RedisCluster on the cluster - all in one group), timed from the first batch
of any process to the last batch of any (CLOCK_MONOTONIC is system-wide). Each figure is
the median of `--rounds`. Recorded under `apply_cluster`: events/s per process count on
each Redis and the cluster's ratio to the single Redis at the same count.
`bench/apply.py --cluster` delegates here (`main(argv)`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import multiprocessing as mp
import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio as aredis

from bench._apply_load import DATA, TRUNCATE, workload
from bench._common import best_of, database_url, publish_fresh, record, redis_url
from dualsync.ops.embedded_cluster import EmbeddedRedisCluster
from dualsync.producers import EventSpec
from dualsync.redisconn import AnyRedis, cluster_url, connect
from dualsync.schema.migrate import Migrator, core_set
from dualsync.worker.config import WorkerConfig
from dualsync.worker.context import StartOptions
from dualsync.worker.run import run_until_idle

__all__ = ["main", "run"]

Window = tuple[float, float]
SHARDS = 4


@contextlib.contextmanager
def cluster_url_for_run() -> Iterator[str]:
    """REDIS_CLUSTER_URL, or a fresh embedded three-node cluster for the run."""
    if os.environ.get("REDIS_CLUSTER_URL"):
        yield cluster_url(os.environ["REDIS_CLUSTER_URL"])
        return
    with EmbeddedRedisCluster() as cluster:
        yield cluster.url


async def _delete_prefix(client: AnyRedis, prefix: str) -> None:
    if isinstance(client, aredis.RedisCluster):
        for node in client.get_primaries():
            for k in await client.keys(f"{prefix}:*", target_nodes=node):
                await client.delete(k)
    elif keys := await client.keys(f"{prefix}:*"):
        await client.delete(*keys)


async def _publish(db: str, url: str, prefix: str, specs: list[EventSpec]) -> None:
    await publish_fresh(db, url, specs, truncate=TRUNCATE, prefix=prefix, shards=SHARDS,
                        flush=False)  # fmt: skip


def _process(db: str, url: str, prefix: str, batch: int, name: str, out: Any) -> None:
    """Child: one worker process (one consumer) draining the group; report its window."""
    cfg = WorkerConfig(
        prefix=prefix,
        shards=SHARDS,
        consumer_name=name,
        batch_size=batch,
        block_ms=50,
        mapping_paths=(DATA / "shop.yaml",),
    )
    wctx = asyncio.run(run_until_idle(StartOptions(cfg, db, url), idle_s=0.3))
    out.put((wctx.stats.first_batch_at, wctx.stats.last_batch_done))


async def drain_with(db: str, url: str, specs: list[EventSpec], batch: int, n: int) -> float:
    """Publish `specs` under a fresh prefix, time `n` worker processes draining them."""
    prefix = f"bcl{uuid.uuid4().hex[:8]}"
    await _publish(db, url, prefix, specs)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_process, args=(db, url, prefix, batch, f"p{i}", out)) for i in range(n)
    ]
    for p in procs:
        p.start()
    windows: list[Window] = [
        await asyncio.to_thread(functools.partial(out.get, timeout=600)) for _ in procs
    ]
    for p in procs:
        await asyncio.to_thread(p.join, 60)
    out.close()
    out.join_thread()
    client = connect(url)
    await _delete_prefix(client, prefix)
    await client.aclose()
    return max(w[1] for w in windows) - min(w[0] for w in windows if w[0])


async def run(
    events: int, processes: Sequence[int], *, batch: int = 1000, rounds: int = 1
) -> dict[str, Any]:
    """Measure events/s per process count on a single Redis and on the cluster."""
    specs = workload(events)
    with (
        tempfile.TemporaryDirectory() as tmp,
        database_url(Path(tmp)) as db,
        redis_url() as single,
        cluster_url_for_run() as cluster,
    ):
        Migrator(db, [core_set()]).up()
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("drop schema if exists shop cascade")
            conn.execute((DATA / "shop.sql").read_text())
        await drain_with(db, single, specs[: events // 10], batch, 1)  # warm-up
        figures: dict[str, dict[str, int]] = {"single": {}, "cluster": {}}
        for n in processes:
            for name, url in (("single", single), ("cluster", cluster)):
                t = await best_of(rounds, functools.partial(drain_with, db, url, specs, batch, n))
                figures[name][str(n)] = round(events / t)
                print(
                    f"{name:>7} Redis, {n} worker process(es): {figures[name][str(n)]:,} events/s"
                )
    ratios = {k: round(figures["cluster"][k] / figures["single"][k], 3) for k in figures["single"]}
    print("cluster / single at the same process count: " + ", ".join(
        f"{k} -> {v:.2f}" for k, v in ratios.items()
    ))  # fmt: skip
    return {
        "events": events,
        "batch_size": batch,
        "rounds": rounds,
        "cluster_nodes": 3 if not os.environ.get("REDIS_CLUSTER_URL") else None,
        "events_per_s": {"single": figures["single"], "cluster": figures["cluster"]},
        "cluster_ratio_to_single": ratios,
    }


def _processes(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--processes wants counts like 1,2,4, not {text!r}"
        ) from None
    if not counts or any(c < 1 for c in counts):
        raise argparse.ArgumentTypeError("--processes wants positive counts like 1,2,4")
    return counts


def main(argv: Sequence[str] | None = None) -> None:
    """CLI entry: run and record under `apply_cluster`."""
    ap = argparse.ArgumentParser(
        prog="python -m bench.apply_cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--processes", type=_processes, default=[1, 2, 4])
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args(argv)
    result = asyncio.run(
        run(args.events, args.processes, batch=args.batch_size, rounds=args.rounds)
    )
    record("apply_cluster", result)


if __name__ == "__main__":
    main()
