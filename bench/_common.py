"""Shared benchmark plumbing: services (embedded unless configured), timing, rounds, results.

`best_of` and `record` keep their first signatures (every module uses them). What the runner
(`python -m bench`) adds: `rounds_of` (per-round samples, warm-up rounds excluded),
`spread_of` (median and min/max of those samples) and `aggregate` (the same, leaf by leaf,
over the result dicts of several runs of one module). `record` writes to
`DUALSYNC_BENCH_RESULTS` when set (the runner points each module at a scratch file and
merges them; a smoke run never touches bench/results/latest.json).
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import orjson
import psycopg

from dualsync.ops.embedded import EmbeddedPostgres, EmbeddedRedis
from dualsync.producers import EventSpec, Publisher
from dualsync.redisconn import connect

RESULTS = Path(__file__).with_name("results") / "latest.json"
#: where `record` writes instead of RESULTS (the runner sets it for its children)
RESULTS_ENV: Final = "DUALSYNC_BENCH_RESULTS"
#: the key, inside a section, under which a figure's spread over rounds is kept
SPREAD: Final = "spread"


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """REDIS_URL, or a fresh embedded redis-server for the run."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    with EmbeddedRedis(appendonly=False) as server:
        yield server.url


@contextlib.contextmanager
def database_url(tmp: Path) -> Iterator[str]:
    """DATABASE_URL, or a fresh embedded PostgreSQL for the run."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    pg = EmbeddedPostgres(tmp / "pg", delete_on_stop=True)
    try:
        url = pg.start()
        _like_a_running_server(url)
        yield url
    finally:
        pg.stop()


def _like_a_running_server(url: str) -> None:
    """A new cluster has no WAL segments to recycle yet, and zero-fills every new 16 MB
    one before writing it (`wal_init_zero`): until about `max_wal_size` of WAL exists, a
    write-heavy baseline pays for that and the code measured beside it, CPU-bound, hardly
    does (bench.vectors' binary COPY: 13k rows/s on a new cluster, 20-22k on one that has
    run a while, the worker 5.0k either way). Skipping the zero-fill makes a fresh embedded
    server measure as a running one does."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter system set wal_init_zero = off")
        conn.execute("select pg_reload_conf()")


def freeze_workload() -> None:
    """Move everything the harness holds so far (its workload) out of the collector's view.

    A benchmark that runs the worker in its own process also holds the events it publishes;
    the worker's first full collection would walk them all (5,000 embeddings are 7.7
    million floats: a first round 30% slower than the next ones, seen in bench.vectors).
    A worker process holds only the batches in flight, so the harness's data is not its
    cost. Call it once the workload is built."""
    gc.collect()
    gc.freeze()


async def best_of(rounds: int, fn: Callable[[], Awaitable[float]]) -> float:
    """Median of `rounds` measurements (each returns seconds); robust to one noisy round."""
    return statistics.median([await fn() for _ in range(rounds)])


async def rounds_of(
    rounds: int, fn: Callable[[], Awaitable[float]], *, warmup: int = 1
) -> list[float]:
    """`warmup` discarded measurements, then `rounds` kept ones, in order."""
    for _ in range(warmup):
        await fn()
    return [await fn() for _ in range(rounds)]


def spread_of(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """Median, min, max and count of per-round values (the shape kept under `spread`)."""
    if not values:
        raise ValueError("spread_of needs at least one value")
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "rounds": len(values),
    }


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _leaves(d: dict[str, Any], path: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in d.items():
        if k == SPREAD:
            continue
        p = f"{path}.{k}" if path else k
        if isinstance(v, dict):
            yield from _leaves(v, p)
        else:
            yield p, v


def _put(d: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[last] = value


def aggregate(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One result dict from several runs of a module: every numeric leaf becomes the median
    over the runs (its min/max under `spread`, keyed by dotted path); other leaves (flags,
    lists, labels) are the last run's. One run passes through unchanged, its own `spread`
    (a module that measures rounds itself) kept."""
    if len(runs) == 1:
        return dict(runs[0])
    out: dict[str, Any] = {}
    spread: dict[str, Any] = {}
    for path, last in _leaves(runs[-1]):
        values = [v for r in runs for p, v in _leaves(r) if p == path]
        if _number(last) and all(_number(v) for v in values):
            s = spread_of(values)
            ints = all(isinstance(v, int) for v in values)
            _put(out, path, round(s["median"]) if ints else s["median"])
            if not (ints and s["min"] == s["max"]):  # a parameter (events, batch size)
                spread[path] = s
        else:
            _put(out, path, last)
    out[SPREAD] = spread
    return out


def now() -> float:
    """Monotonic seconds."""
    return time.perf_counter()


def results_path() -> Path:
    """The results file `record` writes: DUALSYNC_BENCH_RESULTS, else RESULTS."""
    override = os.environ.get(RESULTS_ENV)
    return Path(override) if override else RESULTS


def load_results(path: Path) -> dict[str, Any]:
    """A results file's contents ({} if it does not exist)."""
    return dict(orjson.loads(path.read_bytes())) if path.exists() else {}


def write_results(path: Path, data: dict[str, Any]) -> None:
    """Write a results file (sorted keys, indented), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")


def record(section: str, values: dict[str, Any]) -> None:
    """Merge `values` under `section` into the results file (bench/results/latest.json)."""
    path = results_path()
    data = load_results(path)
    data[section] = values
    write_results(path, data)


async def publish_fresh(
    db: str, url: str, specs: Sequence[EventSpec], *, truncate: str, prefix: str,
    shards: int = 4, chunk: int = 1000, flush: bool = True,
) -> None:  # fmt: skip
    """Empty the tables (`truncate`, one statement) and, with `flush`, the Redis database;
    then publish `specs` through the SDK in pipelined chunks of `chunk`."""
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await conn.execute(truncate.encode())
    client = connect(url)
    if flush:
        await client.flushdb()
    pub = Publisher(client, source="bench", prefix=prefix, shards=shards)
    for i in range(0, len(specs), chunk):
        await pub.publish_many(list(specs[i : i + chunk]))
    await pub.aclose()
    await client.aclose()
