"""The phases of one sweep: digest both sides, compare the differing buckets key by key,
recheck what differed. `sweep.py` says why it is built this way.

Only the digest phase runs two tasks (one per side, so both sides are read at about the
same time). Each canonicalises its chunk in a worker thread: the GIL is shared every few
milliseconds instead of one side holding the event loop for a whole chunk, so neither
side starves the other, and Postgres works on the next page meanwhile. Everything that
changes the state happens on the event loop between awaits, a chunk at a time, so a
checkpoint taken at any await describes whole chunks only.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dualsync.errors import PermanentError
from dualsync.ops.verify.canon import Canonicalizer
from dualsync.ops.verify.inflight import InFlight
from dualsync.ops.verify.sample import (
    IN_FLIGHT,
    MATCH,
    Finding,
    check_keys,  # the sampled verify's own classification, so both name drift alike
)
from dualsync.ops.verify.sweep_hash import bucket_of
from dualsync.ops.verify.sweep_progress import SweepProgress
from dualsync.ops.verify.sweep_scan import (
    TargetReader,
    legacy_pairs,
    live_keys,
    live_keys_in,
    target_pairs,
)
from dualsync.ops.verify.sweep_state import Checkpoint, SweepState
from dualsync.producers.stores import FileStore
from dualsync.schema.legacy import LegacyStore

__all__ = ["SweepContext", "compare_phase", "digest_phase", "recheck_phase"]

#: how long one look at the unapplied stream entries is trusted in the compare phase
FLYING_TTL_S = 1.0
BATCH = 1000
#: the compare phase walks the gate's keys `SPAN * chunk` at a time, filtered in SQL
SPAN = 10


@dataclass(slots=True, eq=False)
class SweepContext:
    """What the phases share: inputs, the state, counters of this process's own work."""

    pool: AsyncConnectionPool[Any]
    em: Any
    store: LegacyStore
    canon: Canonicalizer
    state: SweepState
    checkpoint: Checkpoint | None
    in_flight: Callable[[], Awaitable[InFlight]]
    meter: SweepProgress
    chunk: int = 1000
    checkpoint_every_s: float = 5.0
    max_findings: int = 100_000
    #: rows (digest phase) and keys (compare phase) this process read, per stream
    scanned: dict[str, int] = field(default_factory=dict)
    #: first-look findings of the keys this process compared (resumed keys are read again)
    first: dict[str, Finding] = field(default_factory=dict)
    reader: TargetReader = field(init=False)
    _saved_at: float = field(default_factory=time.monotonic)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _flying: tuple[float, InFlight] | None = None

    def __post_init__(self) -> None:
        self.reader = TargetReader(self.em)

    @property
    def buckets(self) -> int:
        return int(self.state.plan["buckets"])

    def count(self, stream: str, n: int) -> None:
        """`n` more rows (or keys) read from `stream` in the current phase."""
        name = f"{self.meter.phase}.{stream}"
        self.scanned[name] = self.scanned.get(name, 0) + n
        self.meter.advance(stream, n)

    async def save(self) -> None:
        """Write the checkpoint now (the state is snapshotted before the write)."""
        if self.checkpoint is None:
            return
        async with self._lock:
            data = self.state.dump()
            await self.checkpoint.save(data)
            self._saved_at = time.monotonic()

    async def tick(self) -> None:
        """Write the checkpoint when `checkpoint_every_s` has passed; let the other side run."""
        if self.checkpoint is not None and (
            time.monotonic() - self._saved_at >= self.checkpoint_every_s
        ):
            await self.save()
        await asyncio.sleep(0)

    async def flying(self) -> InFlight:
        now = time.monotonic()
        if self._flying is None or now - self._flying[0] > FLYING_TTL_S:
            self._flying = (now, await self.in_flight())
        return self._flying[1]

    async def check(self, keys: list[str]) -> list[Finding]:
        """Both sides of `keys` read now and classified as sample.py does."""
        return await check_keys(
            self.pool, self.em, self.store, self.canon, keys, await self.flying()
        )


async def _legacy_digest(ctx: SweepContext) -> None:
    side = ctx.state.legacy
    plain = isinstance(ctx.store, FileStore)  # as sample.py decides it
    async for recs in ctx.store.iter_records(after=side.after, chunk=ctx.chunk):
        pairs, skipped = await asyncio.to_thread(
            functools.partial(legacy_pairs, plain_json=plain),
            ctx.em, ctx.canon, recs, ctx.buckets,
        )  # fmt: skip
        side.count(pairs, recs[-1].key if recs else None, len(recs), skipped)
        ctx.count("legacy", len(recs))
        await ctx.tick()
    side.done = True


async def _target_digest(ctx: SweepContext) -> None:
    side = ctx.state.target
    while True:
        async with ctx.pool.connection() as conn:
            keys = await live_keys(conn, ctx.em.name, side.after, ctx.chunk)
            if not keys:
                break
            rows, children = await ctx.reader.fetch(conn, keys)
        pairs = await asyncio.to_thread(target_pairs, ctx.canon, keys, rows, children, ctx.buckets)
        side.count(pairs, keys[-1], len(keys), 0)
        ctx.count("target", len(keys))
        await ctx.tick()
    side.done = True


async def digest_phase(ctx: SweepContext, totals: tuple[int | None, int | None]) -> None:
    """Stream both sides once into their per-bucket digests, from where each stopped."""
    st = ctx.state
    ctx.meter.start("digest", {"legacy": (totals[0], st.legacy.scanned),
                               "target": (totals[1], st.target.scanned)})  # fmt: skip
    try:
        async with asyncio.TaskGroup() as tg:
            if not st.legacy.done:
                tg.create_task(_legacy_digest(ctx))
            if not st.target.done:
                tg.create_task(_target_digest(ctx))
    except ExceptionGroup as group:  # one side failed and the other was stopped
        raise group.exceptions[0] from None  # the caller's one-line error, not a group


def _translatable(em: Any, key: str) -> bool:
    try:
        em.translate_key(key)
    except PermanentError:
        return False  # never applied under this key: it added nothing to either digest
    return True


async def _look(ctx: SweepContext, keys: list[str]) -> None:
    """First look at `keys`: matches counted, the rest kept open for the recheck."""
    found = await ctx.check([k for k in keys if _translatable(ctx.em, k)])
    cmp = ctx.state.compare
    for f in found:
        cmp.checked += 1
        if f.kind == MATCH:
            cmp.matched += 1
        else:
            cmp.open.append(f.key)
            ctx.first[f.key] = f
    if len(cmp.open) >= ctx.max_findings:
        cmp.truncated = True


async def _legacy_compare(ctx: SweepContext, wanted: set[int]) -> None:
    cmp, n = ctx.state.compare, ctx.buckets
    async for raw in ctx.store.iter_keys(after=cmp.legacy_after, chunk=ctx.chunk):
        keys: list[str] = []
        for k in raw:
            try:
                ck = ctx.em.canonical_key(k)
            except PermanentError:
                continue
            if bucket_of(ck, n) in wanted:
                keys.append(ck)
        if keys:
            await _look(ctx, keys)
        if raw:
            cmp.legacy_after = raw[-1]
        ctx.count("legacy", len(raw))
        await ctx.tick()
        if cmp.truncated:
            break
    cmp.legacy_done = True


async def _target_compare(ctx: SweepContext, differing: list[int]) -> None:
    cmp = ctx.state.compare
    while not cmp.truncated:
        async with ctx.pool.connection() as conn:
            page, last = await live_keys_in(conn, ctx.em.name, cmp.target_after,
                                            SPAN * ctx.chunk, ctx.buckets, differing)  # fmt: skip
        if last is None:
            break
        present = await ctx.store.get_many(page) if page else {}
        absent = [k for k in page if k not in present]  # the others were compared above
        if absent:
            await _look(ctx, absent)
        cmp.target_after = last
        ctx.count("target", len(page))
        await ctx.tick()
    cmp.target_done = True


async def compare_phase(ctx: SweepContext, differing: list[int]) -> None:
    """Every key of the differing buckets, compared one by one: the legacy side's keys in
    store order, then the target's live keys that the legacy store does not have."""
    st = ctx.state
    ctx.meter.start("compare", {"legacy": (st.legacy.scanned, 0),
                                "target": (st.target.digests.total(differing), 0)})  # fmt: skip
    if not differing:
        st.compare.legacy_done = st.compare.target_done = True
        return
    if not st.compare.legacy_done:
        await _legacy_compare(ctx, set(differing))
    if not st.compare.target_done:
        await _target_compare(ctx, differing)


async def _check_all(ctx: SweepContext, keys: list[str]) -> list[Finding]:
    out: list[Finding] = []
    for i in range(0, len(keys), BATCH):
        out.extend(await ctx.check(keys[i : i + BATCH]))
    return out


async def recheck_phase(
    ctx: SweepContext, grace_s: float, generations: int
) -> tuple[list[Finding], int]:
    """sample.py's rechecks over the keys that differed: (findings, keys in flight).

    A key that differed and matches on a later look was in flight (its event landed); only
    what still differs after `generations` looks `grace_s` apart, with nothing in flight,
    is confirmed. Keys of a resumed compare were seen by an earlier process: their first
    look is taken again now."""
    keys = list(dict.fromkeys(ctx.state.compare.open))
    open_ = [ctx.first[k] for k in keys if k in ctx.first]
    in_flight = 0
    earlier = [k for k in keys if k not in ctx.first]
    if earlier:
        again = await _check_all(ctx, earlier)
        in_flight += sum(1 for f in again if f.kind == MATCH)
        open_.extend(f for f in again if f.kind != MATCH)
    for generation in range(1, generations + 1):
        if not open_:
            break
        await asyncio.sleep(grace_s)
        again = await _check_all(ctx, [f.key for f in open_])
        for f in again:
            f.generation = generation
        in_flight += sum(1 for f in again if f.kind == MATCH)
        open_ = [f for f in again if f.kind != MATCH]
    for f in open_:
        if f.kind == IN_FLIGHT:
            in_flight += 1
        else:
            f.confirmed = True
    return open_, in_flight
