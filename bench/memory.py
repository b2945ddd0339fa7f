"""Worker memory over a long run: one `dualsync worker` applying 1,000,000 events.

    python -m bench.memory [--events N] [--keys N] [--backlog N]

One `dualsync worker` process (the production entry point, default tuning) applies upserts
of `--keys` customers (each key rewritten events/keys times, ~450-byte payloads). This
process publishes in pipelines of 1,000 while fewer than `--backlog` events are unapplied
(so Redis holds a bounded window) and trims the streams as the worker's cron does
(`trim_streams`, below the oldest pending entry) a few times a second. Progress is the
events published minus the entries left after trimming (exact to within the batch in
hand). At every tenth of the events (100k by default) the worker's VmRSS and VmHWM are
read from /proc/<pid>/status.

Records `memory.peak_rss_mb` (VmHWM at the end), `memory.growth_mb_2nd_to_10th` (VmRSS at
the end of the 10th tenth minus at the end of the 2nd: start-up and the first batches'
caches excluded), the samples, and the apply rate.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from bench._common import database_url, record, redis_url
from bench._live import SHARDS, Workers, backlog, doc, prepare_db, rss_mb
from dualsync.logging import configure_logging
from dualsync.producers import EventSpec, Publisher

PREFIX = "bmem"
CHUNK = 1000
#: targets of the issue: peak RSS at most this, and "flat" growth
TARGET_PEAK_MB = 200


async def _load(
    client: aredis.Redis, workers: Workers, events: int, keys: int, window: int
) -> tuple[list[dict[str, Any]], float]:
    """Publish `events`, keeping at most `window` unapplied; RSS at every tenth applied."""
    pid = workers.pids[0]
    pub = Publisher(client, source="bench", prefix=PREFIX, shards=SHARDS)
    payloads = [doc(f"m{k}") for k in range(keys)]
    every = max(events // 10, 1)
    samples: list[dict[str, Any]] = []
    sent = applied = 0
    t0 = time.perf_counter()
    while applied < events:
        workers.check_alive()
        left = await backlog(client, PREFIX)
        applied = sent - left
        while len(samples) < 10 and applied >= every * (len(samples) + 1):
            rss, hwm = rss_mb(pid)
            samples.append({"tenth": len(samples) + 1, "applied": applied, "rss_mb": rss,
                            "hwm_mb": hwm, "at_s": round(time.perf_counter() - t0, 1)})  # fmt: skip
        if sent < events and left < window:
            # at most 10 pipelines between two looks, so samples are taken on time
            for _ in range(min(window - left, events - sent, 10 * CHUNK) // CHUNK or 1):
                n = min(CHUNK, events - sent)
                await pub.publish_many(
                    [EventSpec("customers", f"m{(sent + i) % keys}",
                               payload=payloads[(sent + i) % keys]) for i in range(n)]
                )  # fmt: skip
                sent += n
                if sent >= events:
                    break
        else:
            await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - t0
    await pub.aclose()
    return samples, elapsed


async def run(events: int, keys: int, window: int) -> dict[str, Any]:
    """Start one worker, apply `events`, sample its memory; the figures."""
    with tempfile.TemporaryDirectory() as t, database_url(Path(t)) as server, redis_url() as url:
        db = prepare_db(server, "bench_memory")
        client = aredis.Redis.from_url(url)
        await client.flushdb()
        with Workers(1, database_url=db, redis_url=url, prefix=PREFIX,
                     log_dir=Path(t) / "workers") as workers:  # fmt: skip
            probe = Publisher(client, source="bench", prefix=PREFIX, shards=SHARDS)
            await workers.wait_ready(client, probe.publish_many)
            await probe.aclose()
            start_rss, _ = rss_mb(workers.pids[0])
            samples, elapsed = await _load(client, workers, events, keys, window)
            end_rss, peak = rss_mb(workers.pids[0])
            codes = workers.stop()
        await client.flushdb()
        await client.aclose()
    second = samples[1]["rss_mb"] if len(samples) > 1 else samples[0]["rss_mb"]
    growth = round(samples[-1]["rss_mb"] - second, 1)
    result = {
        "events": events, "keys": keys, "backlog_max": window,
        "events_per_s": round(events / elapsed), "start_rss_mb": start_rss,
        "end_rss_mb": end_rss, "peak_rss_mb": peak, "growth_mb_2nd_to_10th": growth,
        "samples": samples, "worker_exit_code": codes[0],
    }  # fmt: skip
    flat = "flat" if abs(growth) <= max(5.0, 0.05 * second) else "GROWING"
    print(f"worker memory over {events:,} events ({result['events_per_s']:,}/s): peak "
          f"{peak} MB (target <= {TARGET_PEAK_MB}), RSS {second} MB after the 2nd tenth -> "
          f"{samples[-1]['rss_mb']} MB after the 10th ({growth:+} MB: {flat}); "
          f"at start {start_rss} MB")  # fmt: skip
    return result


def main() -> None:
    """CLI entry: run and record under `memory`."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=1_000_000, help="events applied (1000000)")
    ap.add_argument("--keys", type=int, default=100_000, help="distinct customers (100000)")
    ap.add_argument("--backlog", type=int, default=100_000, help="unapplied at most (100000)")
    a = ap.parse_args()
    if a.events < 10 or a.keys < 1 or a.backlog < CHUNK:
        ap.error(f"--events must be at least 10, --keys at least 1, --backlog at least {CHUNK}")
    configure_logging("json", "WARNING", force=True)
    record("memory", asyncio.run(run(a.events, a.keys, a.backlog)))


if __name__ == "__main__":
    main()
