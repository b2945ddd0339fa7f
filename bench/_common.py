"""Shared benchmark plumbing: services (embedded unless configured), timing, results file."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from dualsync.ops.embedded import EmbeddedPostgres, EmbeddedRedis

RESULTS = Path(__file__).with_name("results") / "latest.json"


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
        yield pg.start()
    finally:
        pg.stop()


async def best_of(rounds: int, fn: Callable[[], Awaitable[float]]) -> float:
    """Median of `rounds` measurements (each returns seconds); robust to one noisy round."""
    return statistics.median([await fn() for _ in range(rounds)])


def now() -> float:
    """Monotonic seconds."""
    return time.perf_counter()


def record(section: str, values: dict[str, Any]) -> None:
    """Merge `values` under `section` into bench/results/latest.json."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = orjson.loads(RESULTS.read_bytes()) if RESULTS.exists() else {}
    data[section] = values
    RESULTS.write_bytes(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
