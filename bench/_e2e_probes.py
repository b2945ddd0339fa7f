"""The probes of bench/e2e.py, each run in a child process of its own.

- `listen`: stamps the moment each transaction's rows became visible (the first
  `pg_notify` of the statement trigger `PROBE_SQL` installs, delivered at commit);
- `reader`: a plain XREADGROUP consumer of the baseline streams, stamping each read.
"""

from __future__ import annotations

import asyncio
import time
from multiprocessing.synchronize import Event
from typing import Any, Final

import psycopg
import redis.asyncio as aredis

from bench._live import SHARDS
from dualsync.schema.streams import stream_keys
from dualsync.worker.config import WorkerConfig

__all__ = ["CHANNEL", "PROBE_SQL", "RT_GROUP", "RT_PREFIX", "listen", "reader"]

RT_PREFIX: Final = "bxrt"
RT_GROUP: Final = "rt"
CHANNEL: Final = "bench_e2e_commit"
PROBE_SQL: Final = f"""
create function shop.bench_e2e_notify() returns trigger language plpgsql as $$
begin perform pg_notify('{CHANNEL}', txid_current()::text); return null; end $$;
create trigger bench_e2e_notify after insert or update on shop.customers
  for each statement execute function shop.bench_e2e_notify();
"""


def listen(db: str, ready: Event, stop: Event, out: Any) -> None:
    """Child process: commit time (first notification) per 32-bit transaction id."""
    seen: dict[int, float] = {}
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f"listen {CHANNEL}".encode())
        ready.set()
        while not stop.is_set():
            for n in conn.notifies(timeout=0.2):
                seen.setdefault(int(n.payload) % 2**32, time.time())
    out.put(seen)


async def _read_loop(url: str, name: str, stop: Event, out: Any) -> None:
    client = aredis.Redis.from_url(url)
    streams = dict.fromkeys(stream_keys(RT_PREFIX, SHARDS), ">")
    per_stream = -(-WorkerConfig().batch_size // SHARDS)  # the worker's COUNT split
    seen: list[tuple[bytes, float]] = []
    while not stop.is_set():
        resp = await client.xreadgroup(RT_GROUP, name, streams, count=per_stream, block=1000)
        t = time.time()
        for stream, entries in resp or []:
            seen.extend((fields[b"key"], t) for _, fields in entries)
            await client.xack(stream, RT_GROUP, *[i for i, _ in entries])
    await client.aclose()
    out.put(seen)


def reader(url: str, name: str, stop: Event, out: Any) -> None:
    """Child process: (key, read time) of every entry this consumer read."""
    asyncio.run(_read_loop(url, name, stop, out))
