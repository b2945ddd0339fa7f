"""Readiness gates: may an entity's reads move on? Each gate has a value, a limit, a verdict.

Built so far: recent verify runs clean within the bound, stream lag and oldest pending age
under their limits, no dead letters for the entity. (The shadow-read mismatch gate and the
"no mapping change since the last full sweep" gate come with shadow reads, a later step;
they are not reported as passing meanwhile: they are not listed at all.)
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
import redis.asyncio as aredis

from dualsync.producers.backfill import group_lag
from dualsync.schema.streams import dlq_key, stream_keys

__all__ = ["Gate", "Limits", "Readiness", "check_readiness"]


@dataclass(frozen=True, slots=True)
class Limits:
    """What "ready" means."""

    runs: int = 3
    max_drift: float = 0.001
    max_lag: int = 1000
    max_pending_age_s: float = 60.0
    prefix: str = "dualsync"
    shards: int = 4
    group: str = "apply"


@dataclass(frozen=True, slots=True)
class Gate:
    """One gate's reading."""

    name: str
    passed: bool
    value: str
    limit: str


@dataclass(slots=True)
class Readiness:
    """Every gate of one entity."""

    entity: str
    gates: list[Gate] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return bool(self.gates) and all(g.passed for g in self.gates)

    def snapshot(self) -> dict[str, Any]:
        """What the audit log keeps with a flip."""
        return {
            "entity": self.entity,
            "ready": self.ready,
            "gates": [asdict(g) for g in self.gates],
        }


async def _verify_gate(conn: psycopg.AsyncConnection[Any], entity: str, lim: Limits) -> Gate:
    cur = await conn.execute(
        "select drift, drift_upper_bound from dualsync.verify_runs where entity = %s and "
        "status = 'done' order by started_at desc limit %s",
        [entity, lim.runs],
    )
    runs = await cur.fetchall()
    limit = f"last {lim.runs} runs with 0 drift, bound <= {lim.max_drift:.3%}"
    if len(runs) < lim.runs:
        return Gate("verify", passed=False, value=f"{len(runs)} finished run(s)", limit=limit)
    worst = max(float(b) if b is not None else 1.0 for _, b in runs)
    drift = sum(int(d) for d, _ in runs)
    ok = drift == 0 and worst <= lim.max_drift
    return Gate("verify", ok, f"{drift} drift, worst bound {worst:.3%}", limit)


async def _lag_gates(client: aredis.Redis, lim: Limits) -> list[Gate]:
    lag = await group_lag(client, lim.prefix, lim.shards, lim.group)
    oldest: float | None = None
    for stream in stream_keys(lim.prefix, lim.shards):
        try:
            info = await client.xpending(stream, lim.group)
        except aredis.ResponseError:
            continue  # no stream or no group yet: nothing pending there
        if int(info["pending"]):
            low = info["min"].decode() if isinstance(info["min"], bytes) else str(info["min"])
            age = time.time() - int(low.split("-")[0]) / 1000
            oldest = age if oldest is None else max(oldest, age)
    age_text = "none pending" if oldest is None else f"{oldest:.0f} s"
    return [
        Gate("lag", lag <= lim.max_lag, f"{lag} unapplied", f"<= {lim.max_lag}"),
        Gate("oldest_pending", oldest is None or oldest <= lim.max_pending_age_s, age_text,
             f"<= {lim.max_pending_age_s:.0f} s"),
    ]  # fmt: skip


async def _dlq_gate(client: aredis.Redis, entity: str, lim: Limits) -> Gate:
    letters = 0
    last = "-"
    while True:
        page = await client.xrange(dlq_key(lim.prefix), min=last, max="+", count=1000)
        fresh = [(i, f) for i, f in page if (i.decode() if isinstance(i, bytes) else i) != last]
        if not fresh:
            break
        letters += sum(1 for _, f in fresh if f.get(b"entity", b"").decode() == entity)
        raw = fresh[-1][0]
        last = raw.decode() if isinstance(raw, bytes) else str(raw)
    return Gate("dead_letters", letters == 0, f"{letters} for {entity}", "0")


async def check_readiness(
    conn: psycopg.AsyncConnection[Any], client: aredis.Redis, entity: str, lim: Limits
) -> Readiness:
    """Read every gate of `entity` now."""
    out = Readiness(entity)
    out.gates.append(await _verify_gate(conn, entity, lim))
    out.gates.extend(await _lag_gates(client, lim))
    out.gates.append(await _dlq_gate(client, entity, lim))
    return out
