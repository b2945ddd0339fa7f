"""The demo's third act: one entity's reads move `legacy` -> `shadow` -> `postgres` and back.

Verify has just come back clean; two more sampled runs and a full sweep give readiness what it
asks for. Five app clients (`ReadPath`) are running before the first flip; each flip is timed
until all five read the new mode. In `shadow`, a client with shadow reads on serves reads from
the legacy store and compares Postgres's answer in the background; readiness then passes for
the `postgres` flip, which is followed by the instant rollback.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
import redis.asyncio as aredis
from psycopg_pool import AsyncConnectionPool

from dualsync.ops.cutover.modes import change_mode
from dualsync.ops.cutover.readiness import Limits, Readiness, check_readiness
from dualsync.ops.verify.run import VerifyOptions, run_full, run_verify
from dualsync.producers.readpath import ReadPath
from dualsync.producers.shadow import ShadowConfig
from dualsync.schema.readpath import Mode
from dualsync.schema.streams import shadow_key

__all__ = ["CLIENTS", "SHADOW_READS", "CutoverResult", "cutover_act"]

SHARDS = 4
#: app clients that must each see every flip
CLIENTS = 5
#: shadow-mode reads the demo makes between looks at the counters (keys cycled)
SHADOW_READS = 1000
#: ... and at most (compares that would slow the caller past its budget are skipped, so
#: how many reads it takes to compare enough depends on the machine)
MAX_SHADOW_READS = 20_000
#: compared reads the shadow gate asks for in the demo (production default: 1,000)
MIN_SHADOW_READS = 500
#: the demo's drift-bound limit: 0 drift in all of 2,000 records bounds the rate to 0.15% at
#: 95% (about 3/n), above the production default of 0.1%, which needs >= 3,000 samples
DEMO_MAX_DRIFT = 0.05
#: how long a flip may take to reach every client before the demo gives up
FLIP_DEADLINE_S = 5.0
#: the gap between two of the demo app's reads
READ_GAP_S = 0.001


@dataclass(slots=True)
class CutoverResult:
    """What the act showed, for the closing summary."""

    entity: str
    ok: bool = False
    seen_ms: dict[str, float] | None = None
    shadow: dict[str, int] | None = None
    p99_ms: float = 0.0
    legacy_p99_ms: float = 0.0


async def _seen_by_all(readers: list[ReadPath], entity: str, mode: Mode, t0: float) -> float:
    """Milliseconds until every client reads `mode` (give up after FLIP_DEADLINE_S)."""
    while time.monotonic() - t0 < FLIP_DEADLINE_S:
        modes = await asyncio.gather(*(r.mode(entity) for r in readers))
        if all(m is mode for m in modes):
            return (time.monotonic() - t0) * 1000
        await asyncio.sleep(0.005)
    raise TimeoutError(f"a client still reads the old mode of {entity} after 5 s")


def _gates(r: Readiness) -> str:
    return ", ".join(
        f"{g.name} {'n/a' if not g.applies else 'pass' if g.passed else 'FAIL'}" for g in r.gates
    )


def _p99(took: list[float]) -> float:
    took.sort()
    return took[max(int(len(took) * 0.99) - 1, 0)]


class _Reads:
    """The demo app's reads of one entity: the legacy document by key, keys cycled."""

    def __init__(self, app: Any, entity: str) -> None:
        assert app.stores is not None  # noqa: S101 - opened by the demo
        self.store = app.stores[entity]
        self.entity = entity
        self.keys: list[str] = []
        self.took: list[float] = []

    async def legacy(self, k: str) -> Any:
        rec = await self.store.get(k)
        return rec.doc if rec is not None else None

    async def postgres(self, k: str) -> Any:  # the demo never reads in postgres mode
        raise AssertionError(k)

    async def run(self, rp: ReadPath, n: int, start: int = 0) -> None:
        """`n` reads with the app's gap between them, each timed (ms)."""
        if not self.keys:
            self.keys = [k async for chunk in self.store.iter_keys() for k in chunk]
        for i in range(start, start + n):
            t = time.perf_counter()
            await rp.read(self.entity, self.keys[i % len(self.keys)], self.legacy, self.postgres)
            self.took.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(READ_GAP_S)


async def _legacy_p99(app: Any, entity: str, redis_url: str) -> float:
    """The caller's p99 over SHADOW_READS reads in legacy mode: the baseline."""
    reads = _Reads(app, entity)
    client = aredis.Redis.from_url(redis_url)
    async with ReadPath(client, prefix=app.prefix, ttl_s=1.0) as rp:
        await reads.run(rp, SHADOW_READS)
    await client.aclose()
    return _p99(reads.took)


async def _shadow_reads(
    app: Any, entity: str, redis_url: str, pool: AsyncConnectionPool[Any], key: bytes
) -> tuple[dict[str, int], float]:
    """Reads through a shadow-enabled client until MIN_SHADOW_READS were compared; its
    counters and the caller's p99."""
    reads = _Reads(app, entity)
    client = aredis.Redis.from_url(redis_url)
    # an app's reads come with gaps between them, where the background compares run; the
    # demo gives compares half of its loop (the default is a fifth)
    cfg = ShadowConfig(mappings=app.ms, pool=pool, fingerprint_key=key, seed=1, loop_share=0.5)
    counts = shadow_key(app.prefix, entity)
    async with ReadPath(client, prefix=app.prefix, ttl_s=1.0, shadow=cfg) as rp:
        assert rp.shadow is not None  # noqa: S101 - configured above
        for start in range(0, MAX_SHADOW_READS, SHADOW_READS):
            await reads.run(rp, SHADOW_READS, start)
            await rp.shadow.drain()  # enough compared for the gate yet?
            done = [int(n or 0) for n in await client.hmget(counts, ["matched", "mismatched"])]
            if sum(done) >= MIN_SHADOW_READS:
                break
    raw = await client.hgetall(counts)
    await client.aclose()
    return {k.decode(): int(v) for k, v in raw.items()}, _p99(reads.took)


async def _prepare(run: Any, app: Any, entity: str, redis_url: str, key: bytes) -> None:
    """Two more sampled verify runs (three clean in a row with the last one) and a sweep."""
    vopts = VerifyOptions(entities=(entity,), samples=10_000, seed=2, grace_s=0.5,
                          generations=2, prefix=app.prefix, shards=SHARDS,
                          fingerprint_key=key)  # fmt: skip
    for _ in range(2):
        await run_verify(app.ms, app.stores, vopts, database_url=app.db_url, redis_url=redis_url)
    await run_full(app.ms, app.stores, vopts, database_url=app.db_url, redis_url=redis_url,
                   buckets=256, resume=False, progress=False)  # fmt: skip
    run.step(f"{app.name} {entity}: three clean verify runs in a row and a full sweep")


@dataclass(slots=True)
class _Act:
    """The flips of one entity, with the clients that must follow them."""

    run: Any
    app: Any
    entity: str
    conn: psycopg.AsyncConnection[Any]
    client: aredis.Redis
    readers: list[ReadPath]
    lim: Limits
    seen: dict[str, float] = field(default_factory=dict)

    async def ready(self, what: str) -> Readiness | None:
        """Readiness printed gate by gate; None (and why) when a gate fails."""
        r = await check_readiness(self.conn, self.client, self.entity, self.lim,
                                  mappings=self.app.ms)  # fmt: skip
        self.run.step(f"readiness {self.entity} ({what}): {_gates(r)}")
        for g in r.gates:
            if not g.passed:
                self.run.step(f"[red]gate {g.name}[/]: {g.value} (limit {g.limit})")
        return r if r.ready else None

    async def flip(self, to: Mode, reason: str, ready: Readiness | None = None) -> float:
        """Flip, audited; milliseconds until every client reads the new mode."""
        t0 = time.monotonic()
        await change_mode(self.conn, self.client, self.app.prefix, self.entity, to,
                          actor="demo", reason=reason,
                          readiness=ready.snapshot() if ready else None)  # fmt: skip
        self.seen[to.value] = await _seen_by_all(self.readers, self.entity, to, t0)
        return self.seen[to.value]

    async def audited(self) -> int:
        cur = await self.conn.execute(
            "select count(*) from dualsync.cutover_log where entity = %s", [self.entity]
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def _story(act: _Act, redis_url: str, pool: AsyncConnectionPool[Any], key: bytes,
                 out: CutoverResult) -> None:  # fmt: skip
    run, entity = act.run, act.entity
    ready = await act.ready(f"for shadow, --max-drift {DEMO_MAX_DRIFT:.0%} at demo size")
    if ready is None:
        return
    out.legacy_p99_ms = await _legacy_p99(act.app, entity, redis_url)
    ms = await act.flip(Mode.SHADOW, "verify clean", ready)
    run.step(f"flip {entity} --to shadow: all {CLIENTS} app clients read 'shadow' {ms:.0f} ms "
             f"later")  # fmt: skip
    s, out.p99_ms = await _shadow_reads(act.app, entity, redis_url, pool, key)
    out.shadow = s
    run.step(f"shadow reads: {s.get('reads', 0):,} reads answered from the legacy store; in the "
             f"background {s.get('matched', 0):,} matched Postgres, {s.get('mismatched', 0)} "
             f"mismatched, {s.get('skipped', 0)} skipped to stay in budget; the caller's p99 "
             f"{out.p99_ms:.2f} ms beside {out.legacy_p99_ms:.2f} ms in legacy mode")  # fmt: skip
    ready = await act.ready(f"for postgres, --min-shadow-reads {MIN_SHADOW_READS}")
    if ready is None:
        return
    ms = await act.flip(Mode.POSTGRES, "shadow reads clean", ready)
    run.step(f"flip {entity} --to postgres: all {CLIENTS} clients read from Postgres {ms:.0f} "
             f"ms later; the apps keep writing both stores")  # fmt: skip
    ms = await act.flip(Mode.LEGACY, "rollback drill")
    run.step(f"rollback {entity}: all {CLIENTS} clients back on the legacy store {ms:.0f} ms "
             f"later, nothing lost (dual-write never stopped)")  # fmt: skip
    run.step(f"cutover log: {await act.audited()} audited changes, each with who, why and the "
             f"gates at that moment")  # fmt: skip
    out.seen_ms = act.seen
    out.ok = set(act.seen) == {m.value for m in Mode} and s.get("mismatched", 0) == 0


async def cutover_act(run: Any, app: Any, entity: str, redis_url: str, key: bytes) -> CutoverResult:
    """Verify, sweep, shadow, flip, roll back `entity` of `app`; printed step by step."""
    out = CutoverResult(entity)
    await _prepare(run, app, entity, redis_url, key)
    lim = Limits(prefix=app.prefix, shards=SHARDS, min_shadow_reads=MIN_SHADOW_READS,
                 max_drift=DEMO_MAX_DRIFT)  # fmt: skip
    client = aredis.Redis.from_url(redis_url)
    clients = [aredis.Redis.from_url(redis_url) for _ in range(CLIENTS)]
    readers = [ReadPath(c, prefix=app.prefix, ttl_s=30) for c in clients]
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(app.db_url, min_size=1, max_size=4,
                                                         open=False)  # fmt: skip
    try:
        await pool.open()
        for r in readers:
            await r.start()
        await asyncio.gather(*(r.mode(entity) for r in readers))  # cached: only pub/sub helps
        await asyncio.sleep(0.2)  # subscribed
        async with await psycopg.AsyncConnection.connect(app.db_url, autocommit=True) as conn:
            act = _Act(run, app, entity, conn, client, readers, lim)
            await _story(act, redis_url, pool, key, out)
        return out
    finally:
        for r, c in zip(readers, clients, strict=True):
            await r.aclose()
            await c.aclose()
        await client.aclose()
        await pool.close()
