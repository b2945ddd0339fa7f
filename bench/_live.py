"""A live deployment for bench/e2e.py and bench/memory.py: real `dualsync worker` processes.

- `prepare_db`: a scratch database with dualsync's core migrations and the `shop` schema of
  tests/data (the mapping the workers are started with);
- `Workers`: `n` `dualsync worker` subprocesses (arq-hosted, the production entry point,
  default tuning unless told otherwise), stopped with SIGTERM as a deployment would;
- `pace`: a token-bucket producer that publishes at a steady rate, stamping every event
  with its publish time;
- `backlog`: events the group has not acknowledged yet (after trimming, as the worker's
  cron does); `rss_mb`: a process's VmRSS and VmHWM from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg
import redis.asyncio as aredis
from redis.exceptions import ResponseError

from dualsync.ops.databases import fresh_database
from dualsync.ops.embedded import InWith
from dualsync.producers import EventSpec
from dualsync.schema.migrate import Migrator, core_set
from dualsync.schema.streams import stream_keys
from dualsync.worker.trim import trim_streams

__all__ = [
    "MAPPING",
    "Paced",
    "Workers",
    "backlog",
    "doc",
    "occurred",
    "pace",
    "prepare_db",
    "rss_mb",
]

ROOT: Final = Path(__file__).resolve().parent.parent
MAPPING: Final = ROOT / "tests" / "data" / "shop.yaml"
SHOP_SQL: Final = ROOT / "tests" / "data" / "shop.sql"
SHARDS: Final = 4
#: one ~300-byte nested value shared by every payload (built once: the producer stays cheap)
_PROFILE: Final = {"name": "Customer", "bio": "x" * 260, "tags": ["a", "b"]}

#: publish `specs` (one pipelined round trip)
Send = Callable[[list[EventSpec]], Awaitable[Any]]


def prepare_db(server: str, name: str, extra_sql: str = "") -> str:
    """A fresh database `name` with core migrations, the shop schema and `extra_sql`."""
    db = fresh_database(server, name)
    Migrator(db, [core_set()]).up()
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(SHOP_SQL.read_bytes())
        if extra_sql:
            conn.execute(extra_sql.encode())
    return db


def doc(key: str) -> dict[str, Any]:
    """A customer document of ~450 bytes as JSON."""
    return {"email": f"{key}@shop.test", "tier": "pro", "profile": _PROFILE,
            "apiToken": f"tok-{key}", "createdAt": "2024-01-02T03:04:05Z"}  # fmt: skip


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MB, from /proc/<pid>/status (Linux)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return round(fields["VmRSS"], 1), round(fields["VmHWM"], 1)


async def backlog(client: aredis.Redis, prefix: str) -> int:
    """Entries not yet acknowledged by the group, give or take the batch in hand.

    Trims first (`trim_streams`, what the worker's cron runs): below the oldest pending
    entry every entry is acknowledged, so what XLEN counts after it is the batches in hand
    plus what nobody has read yet. Cheap enough to call a few times a second.
    """
    keys = stream_keys(prefix, SHARDS)
    await trim_streams(client, keys)
    total = 0
    for k in keys:
        total += int(await client.xlen(k))
    return total


class Workers(InWith):
    """`n` `dualsync worker` processes on one mapping; logs in `log_dir`."""

    def __init__(
        self,
        n: int,
        *,
        database_url: str,
        redis_url: str,
        prefix: str,
        log_dir: Path,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.n = n
        self._env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                     "DUALSYNC_PREFIX": prefix, "DUALSYNC_SHARDS": str(SHARDS),
                     "DUALSYNC_LOG_FORMAT": "json", "DUALSYNC_LOG_LEVEL": "WARNING"}  # fmt: skip
        self._prefix = prefix
        self._log_dir = log_dir
        self._extra = list(extra_args)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start the processes (each with its own DUALSYNC_HOME and consumer name)."""
        self._log_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.n):
            env = {**self._env, "DUALSYNC_HOME": str(self._log_dir / f"home-{i}")}
            args = [sys.executable, "-m", "dualsync.ops.cli", "worker", "--mapping",
                    str(MAPPING), "--verify-every", "0", "--consumer-name",
                    f"{self._prefix}-w{i}", *self._extra]  # fmt: skip
            with (self._log_dir / f"worker-{i}.log").open("wb") as log:
                self.procs.append(subprocess.Popen(args, env=env, cwd=ROOT, stdout=log, stderr=log))

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers."""
        return [p.pid for p in self.procs]

    def check_alive(self) -> None:
        """Raise, with the log's tail, if a worker exited."""
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                tail = (self._log_dir / f"worker-{i}.log").read_text(errors="replace")[-1500:]
                msg = f"dualsync worker {i} exited with {p.returncode}; its log ends:\n{tail}"
                raise RuntimeError(msg)

    async def wait_ready(self, client: aredis.Redis, send: Send, wait_s: float = 90.0) -> None:
        """Until every worker has applied something: probe events are published until each
        consumer name shows up in the group (Redis 6.2 lists a consumer once it read)."""
        deadline = time.monotonic() + wait_s
        probe = 0
        while time.monotonic() < deadline:
            self.check_alive()
            names: set[str] = set()
            for k in stream_keys(self._prefix, SHARDS):
                with contextlib.suppress(ResponseError):  # no stream or group yet
                    names |= {str(c["name"]) for c in await client.xinfo_consumers(k, "apply")}
            if len(names) >= self.n and await backlog(client, self._prefix) == 0:
                return
            await send([EventSpec("customers", f"probe-{probe + i}", payload=doc("probe"))
                        for i in range(4 * SHARDS)])  # fmt: skip
            probe += 4 * SHARDS
            await asyncio.sleep(0.3)
        raise TimeoutError(f"{self.n} workers did not start consuming within {wait_s:.0f} s")

    def stop(self, timeout: float = 30.0) -> list[int | None]:
        """SIGTERM (arq finishes the batches in hand), SIGKILL after `timeout`; exit codes."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return [p.returncode for p in self.procs]


@dataclass(slots=True)
class Paced:
    """What a paced run sent: publish times (wall clock, seconds) by sequence number."""

    rate: int
    seconds: float
    sent_at: list[float] = field(default_factory=list)
    #: longest the producer ran behind its schedule (seconds)
    max_behind_s: float = 0.0

    @property
    def achieved_per_s(self) -> float:
        """Events sent per second over the run."""
        return len(self.sent_at) / self.seconds


async def pace(
    send: Send, make: Callable[[int, float], EventSpec], rate: int, seconds: float
) -> Paced:
    """Publish `rate` events/s for `seconds` (token bucket, ~1 ms ticks; bursts of at most
    50 ms of events, so a producer that falls behind sends less instead of flooding).

    `make(seq, publish_time)` builds event `seq`; publish_time is the wall clock just
    before its pipeline is sent (the same clock a Postgres commit or a reader reads).
    """
    out = Paced(rate, seconds)
    cap = max(1, rate // 20)
    loop = asyncio.get_running_loop()
    start = loop.time()
    while (elapsed := loop.time() - start) < seconds:
        due = int(rate * elapsed) + 1 - len(out.sent_at)
        if due <= 0:
            await asyncio.sleep((len(out.sent_at) / rate) - elapsed)
            continue
        out.max_behind_s = max(out.max_behind_s, (due - 1) / rate)
        n = min(due, cap)
        t = time.time()
        first = len(out.sent_at)
        await send([make(first + i, t) for i in range(n)])
        out.sent_at.extend([t] * n)
    return out


def occurred(t: float) -> dt.datetime:
    """A publish time as the envelope's `occurred_at`."""
    return dt.datetime.fromtimestamp(t, dt.UTC)
