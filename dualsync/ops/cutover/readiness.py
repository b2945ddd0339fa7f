"""Readiness gates: may an entity's reads move on? Each gate has a value, a limit, a verdict.

- `verify`: the last `runs` verify runs finished with 0 drift and a bound under `max_drift`;
- `lag`, `oldest_pending`: unapplied stream entries and the oldest pending one's age;
- `dead_letters`: none for the entity;
- `shadow`: shadow reads' mismatch rate, mismatched / (matched + mismatched) from the
  counters in `shadow_key(prefix, entity)` (producers/shadow.py), at most
  `max_shadow_mismatch` over at least `min_shadow_reads` compared reads (`dualsync flip
  --to shadow` clears the counters, so they are this shadow phase's);
- `mapping`: the latest finished full sweep (`verify --full`) compared with the mapping as
  it is now: its run's `mapping_digest` equals the current mapping's.

Which flip needs which gate: the flip to `postgres` needs all six. The flip to `shadow`
serves legacy reads still, and is where shadow reads begin, so it cannot need them: there
`shadow` and `mapping` are listed as not applicable (`applies: false`, passed) and a clean
verify with lag and dead letters in order is enough. Without a flip named, readiness is
read for the entity's next step: `legacy` -> the shadow flip, `shadow` -> the postgres
flip, and `postgres` (no step left) -> what the postgres flip needed, as a standing check.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
import redis.asyncio as aredis

from dualsync.ops.cutover.modes import current_mode
from dualsync.ops.verify.store import mapping_digest
from dualsync.producers.backfill import group_lag
from dualsync.redisconn import AnyRedis
from dualsync.schema.readpath import Mode
from dualsync.schema.streams import dlq_key, shadow_key, stream_keys

__all__ = ["Gate", "Limits", "Readiness", "check_readiness"]


@dataclass(frozen=True, slots=True)
class Limits:
    """What "ready" means."""

    runs: int = 3
    max_drift: float = 0.001
    max_lag: int = 1000
    max_pending_age_s: float = 60.0
    max_shadow_mismatch: float = 0.001
    min_shadow_reads: int = 1000
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
    #: False: this flip does not need the gate (it is passed, and printed `n/a`)
    applies: bool = True


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


async def _lag_gates(client: AnyRedis, lim: Limits) -> list[Gate]:
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


async def _dlq_gate(client: AnyRedis, entity: str, lim: Limits) -> Gate:
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


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def _shadow_gate(client: AnyRedis, entity: str, lim: Limits) -> Gate:
    raw = await client.hgetall(shadow_key(lim.prefix, entity))  # type: ignore[misc]  # redis stubs: Awaitable|dict
    counts = {_text(k): int(v) for k, v in raw.items()}
    matched, mismatched = counts.get("matched", 0), counts.get("mismatched", 0)
    compared = matched + mismatched
    limit = f"<= {lim.max_shadow_mismatch:.3%} over >= {lim.min_shadow_reads} compared reads"
    if compared < lim.min_shadow_reads:
        value = f"{compared} of {lim.min_shadow_reads} reads compared"
        return Gate("shadow", passed=False, value=value, limit=limit)
    rate = mismatched / compared
    fields = {k.removeprefix("field:"): n for k, n in counts.items() if k.startswith("field:")}
    # the most frequent differing field's name helps the next step; names only, never values
    top = f"; most: {max(fields, key=lambda f: (fields[f], f))}" if fields else ""
    value = f"{mismatched} of {compared} mismatched ({rate:.3%}{top})"
    return Gate("shadow", passed=rate <= lim.max_shadow_mismatch, value=value, limit=limit)


async def _mapping_gate(conn: psycopg.AsyncConnection[Any], entity: str, mappings: Any) -> Gate:
    current = mapping_digest(mappings, entity) if mappings is not None else None
    row = None
    if current is not None:
        cur = await conn.execute(
            "select id, mapping_digest from dualsync.verify_runs where entity = %s and mode = "
            "'sweep' and status = 'done' order by finished_at desc, id desc limit 1",
            [entity],
        )
        row = await cur.fetchone()
    if mappings is None:
        value = "mapping unknown: pass --mapping"
    elif current is None:
        value = f"no {entity} in {mappings.path.name}"
    elif row is None:
        value = "no finished full sweep"
    elif row[1] != current:
        value = f"changed since sweep run {row[0]}"
    else:
        value = f"unchanged since sweep run {row[0]}"
    ok = row is not None and row[1] == current
    return Gate("mapping", passed=ok, value=value, limit="last full sweep used this mapping")


def _next_step(mode: Mode) -> Mode:
    return Mode.SHADOW if mode is Mode.LEGACY else Mode.POSTGRES


async def check_readiness(
    conn: psycopg.AsyncConnection[Any],
    client: AnyRedis,
    entity: str,
    lim: Limits,
    *,
    target: Mode | None = None,
    mappings: Any = None,
) -> Readiness:
    """Read every gate of `entity` now, for the flip to `target` (default: the entity's
    next step). `mappings`: the `MappingSet` the mapping gate digests (without one, that
    gate fails when it applies)."""
    if target is None:
        target = _next_step(await current_mode(client, lim.prefix, entity))
    out = Readiness(entity)
    out.gates.append(await _verify_gate(conn, entity, lim))
    out.gates.extend(await _lag_gates(client, lim))
    out.gates.append(await _dlq_gate(client, entity, lim))
    if target is Mode.POSTGRES:
        out.gates.append(await _shadow_gate(client, entity, lim))
        out.gates.append(await _mapping_gate(conn, entity, mappings))
    else:
        why = "n/a: only the flip to postgres needs it"
        for name in ("shadow", "mapping"):
            out.gates.append(Gate(name, passed=True, value=why, limit="-", applies=False))
    return out
