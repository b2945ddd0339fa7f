"""Gather a `StatusSnapshot` from Redis (streams, group, counters, DLQ, modes) and Postgres.

Nothing here assumes a worker ever ran: a stream or group that does not exist yet counts
as empty, an absent counter hash as zeros, unmigrated verify tables as "no verify yet".
Redis 6.2 (the embedded server) has no `lag` in XINFO GROUPS: the total comes from
`group_lag`, as readiness computes it, and each shard's share the same way.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import psycopg
from redis.exceptions import ResponseError

from dualsync.ops.cutover.modes import modes
from dualsync.ops.status.model import (
    ConsumerInfo,
    EntityStatus,
    ShardStatus,
    StatusSnapshot,
    VerifyInfo,
)
from dualsync.producers.backfill import group_lag
from dualsync.redisconn import AnyRedis
from dualsync.schema.readpath import Mode
from dualsync.schema.streams import dlq_key, stream_keys, worker_stats_key

__all__ = ["DLQ_SCAN_CAP", "collect"]

#: DLQ entries read to count dead letters per entity (a huge DLQ is counted up to here)
DLQ_SCAN_CAP = 100_000
_PAGE = 1000
_LATEST_RUNS = (
    "select distinct on (entity) entity, id, started_at, sampled, drift, drift_upper_bound "
    "from dualsync.verify_runs where status = 'done' order by entity, started_at desc"
)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def _shard(client: AnyRedis, n: int, stream: str, group: str, now: float) -> ShardStatus:
    length = int(await client.xlen(stream))
    try:
        groups: list[dict[str, Any]] = await client.xinfo_groups(stream)
    except ResponseError:  # no stream yet
        return ShardStatus(n, stream, 0, 0, 0, None)
    info = next((g for g in groups if _s(g.get("name")) == group), None)
    if info is None:
        return ShardStatus(n, stream, length, length, 0, None)
    pending = int(info.get("pending", 0))
    lag = info.get("lag")
    if lag is None:  # Redis < 7: count the entries after the last delivered one
        last = _s(info.get("last-delivered-id", "0-0"))
        lag = len(await client.xrange(stream, min=f"({last}", max="+", count=1_000_000))
    oldest: float | None = None
    if pending:
        summary = await client.xpending(stream, group)
        low = _s(summary["min"])
        oldest = max(now - int(low.split("-")[0]) / 1000, 0.0)
    raw = await client.xinfo_consumers(stream, group)
    consumers = [ConsumerInfo(_s(c["name"]), int(c["pending"]), int(c["idle"]) / 1000)
                 for c in raw]  # fmt: skip
    return ShardStatus(n, stream, length, pending + int(lag), pending, oldest, consumers)


async def _counters(client: AnyRedis, prefix: str) -> dict[str, dict[str, int]]:
    """entity -> counter -> count, from the hash every worker adds to."""
    raw = await client.hgetall(worker_stats_key(prefix))  # type: ignore[misc]  # redis stubs: Awaitable|dict
    out: dict[str, dict[str, int]] = {}
    for k, v in raw.items():
        counter, _, entity = _s(k).partition(":")
        if entity:
            out.setdefault(entity, {})[counter] = int(v)
    return out


async def _dlq_by_entity(client: AnyRedis, prefix: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    last, seen = "-", 0
    while seen < DLQ_SCAN_CAP:
        page = await client.xrange(dlq_key(prefix), min=last, max="+", count=_PAGE)
        fresh = [(i, f) for i, f in page if _s(i) != last]
        if not fresh:
            break
        for _, f in fresh:
            entity = _s(f.get(b"entity", b"")) or "-"
            counts[entity] = counts.get(entity, 0) + 1
        seen += len(fresh)
        last = _s(fresh[-1][0])
    return counts


async def _verify(conn: psycopg.AsyncConnection[Any] | None) -> dict[str, VerifyInfo]:
    if conn is None:
        return {}
    try:
        cur = await conn.execute(_LATEST_RUNS)
    except psycopg.errors.UndefinedTable:  # `dualsync migrate up` has not run yet
        return {}
    return {
        str(e): VerifyInfo(int(i), at.isoformat(), int(n), int(d or 0),
                           float(b) if b is not None else None)
        for e, i, at, n, d, b in await cur.fetchall()
    }  # fmt: skip


async def collect(
    client: AnyRedis,
    conn: psycopg.AsyncConnection[Any] | None,
    *,
    prefix: str,
    shards: int,
    group: str = "apply",
    entities: tuple[str, ...] = (),
    postgres_error: str = "",
) -> StatusSnapshot:
    """One snapshot. `conn` None: Postgres was unreachable (`postgres_error` says why)."""
    now = time.time()
    shard_rows = [await _shard(client, n, s, group, now)
                  for n, s in enumerate(stream_keys(prefix, shards))]  # fmt: skip
    counters = await _counters(client, prefix)
    dlq = await _dlq_by_entity(client, prefix)
    mode_of = await modes(client, prefix)
    runs = await _verify(conn)
    names = sorted({*entities, *counters, *dlq, *mode_of, *runs})
    rows = []
    for e in names:
        c = counters.get(e, {})
        rows.append(EntityStatus(
            e, mode_of.get(e, Mode.LEGACY).value, applied=c.get("applied", 0),
            deleted=c.get("deleted", 0), stale=c.get("stale", 0),
            dead_lettered=c.get("dead_lettered", 0), dlq=dlq.get(e, 0), verify=runs.get(e),
        ))  # fmt: skip
    return StatusSnapshot(
        at=dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="seconds"),
        prefix=prefix,
        group=group,
        lag=await group_lag(client, prefix, shards, group),
        shards=shard_rows,
        entities=rows,
        postgres_error=postgres_error,
    )
