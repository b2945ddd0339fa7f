"""The full sweep (`verify --full --entity E`): every record of one entity compared, in
memory bounded by the bucket count, however many records there are.

How:

1. Digest. Each side is streamed once, in its own order: the legacy store's records
   (`iter_records`), and the gate's live keys in key order with their target rows and
   child rows. Every record is put in canonical form by the same Canonicalizer and mapping
   as the sampled verify, and adds blake2b(key, fingerprint) to the sum of its bucket, a
   hash of the key (sweep_hash.py): hash buckets need no agreement between Mongo's `_id`
   order, file names and Postgres' collation. Both sides run at once, so a record is read
   on both at about the same time. Memory: two sums and counts per bucket.
2. Compare. Buckets whose sum or count differ are read again, key by key, through
   sample.py's own classification (`missing_in_target`, `extra_in_target`, `mismatch`
   with its fields, `in_flight`): the legacy keys of those buckets in store order (a key
   listing, filtered here), then the gate's live keys of those buckets that the legacy
   store lacks (filtered in SQL: the bucket is md5, which Postgres computes). Memory: one
   chunk of keys, plus the keys that did not match.
3. Recheck. What differed is read again `generations` times `grace_s` apart, with the
   unapplied stream entries in view, exactly as sample.py does; only what still differs,
   with nothing in flight, is confirmed drift. A live system is not reported as drifting.

Why no recursive split of a differing bucket into sub-buckets: both digests are computed
here from full records, so a sub-bucket level would read every record of the differing
buckets again to learn which sub-buckets differ, and then read those once more; comparing
the differing buckets key by key reads each of them once. A split only saves memory when
keys must be held, and the compare holds none (it streams). The bucket count is the knob
instead: the work after the digest is (differing buckets) x (records per bucket), so on a
busy system, where records changed during the scan make buckets differ, more buckets
(`--buckets`, say one per 64-256 records) cost a little memory (~60 bytes per bucket and
side in RAM, 32 in the checkpoint) and save rereads.

Resumable: the state (sweep_state.py) is checkpointed every `checkpoint_every_s` and when
the sweep is cancelled or fails, into the run's verify_runs row (sweep_store.py); a sweep
killed with SIGKILL resumes after the last chunk of each stream that its last checkpoint
counted. `SweepResult` is a `SampleResult` (the CLI prints both alike) whose `bound` is
the rate itself: every record was compared, nothing is estimated.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dualsync.errors import ConfigError
from dualsync.logging import get_logger
from dualsync.ops.verify.canon import Canonicalizer
from dualsync.ops.verify.inflight import InFlight
from dualsync.ops.verify.sample import SampleResult
from dualsync.ops.verify.sweep_progress import SweepProgress
from dualsync.ops.verify.sweep_run import (
    SweepContext,
    compare_phase,
    digest_phase,
    recheck_phase,
)
from dualsync.ops.verify.sweep_state import (
    COMPARE,
    DIGEST,
    RECHECK,
    Checkpoint,
    SweepState,
    plan_of,
)
from dualsync.ops.verify.sweep_store import (
    RunCheckpoint,
    SweepLock,
    finish_sweep_run,
    open_sweep_run,
)
from dualsync.schema.legacy import LegacyStore

__all__ = ["SweepResult", "nothing_in_flight", "run_sweep", "sweep"]

log = get_logger(__name__)


@dataclass(slots=True)
class SweepResult(SampleResult):
    """A full sweep's result: `sampled` is every record compared, `matched` those equal."""

    buckets: int = 0
    differing_buckets: int = 0
    legacy_rows: int = 0
    target_rows: int = 0
    #: legacy keys the key strategy refuses (never applied; sample.py skips them too)
    skipped_keys: int = 0
    #: keys read again one by one, in the differing buckets
    compared: int = 0
    #: rows/keys read by this process per stream and phase (a resume reads only the rest)
    scanned: dict[str, int] = field(default_factory=dict)
    resumes: int = 0
    #: the compare stopped at `max_findings` differing keys: drift is at least this much
    truncated: bool = False
    seconds: float = 0.0
    #: seconds of each phase this process ran
    phase_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def bound(self) -> float:
        """Every record was compared: the drift rate is known, not estimated."""
        return self.rate

    def stats(self) -> dict[str, Any]:
        """The sweep's own figures (stored in the run's `details.sweep_stats`)."""
        phases = {k: round(v, 3) for k, v in self.phase_seconds.items()}
        return {"buckets": self.buckets, "differing_buckets": self.differing_buckets,
                "legacy_rows": self.legacy_rows, "target_rows": self.target_rows,
                "skipped_keys": self.skipped_keys, "compared": self.compared,
                "scanned": self.scanned, "resumes": self.resumes, "truncated": self.truncated,
                "seconds": round(self.seconds, 3), "phase_seconds": phases}  # fmt: skip


async def nothing_in_flight() -> InFlight:
    """No stream to look at: nothing is in flight."""
    return InFlight()


async def _totals(pool: AsyncConnectionPool[Any], em: Any, store: LegacyStore) -> tuple[int, int]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "select count(*) from dualsync.row_state where entity = %s and not deleted", [em.name]
        )
        row = await cur.fetchone()
    return await store.count(), int(row[0]) if row else 0


async def _state(checkpoint: Checkpoint | None, plan: dict[str, Any]) -> SweepState:
    data = await checkpoint.load() if checkpoint is not None else None
    state = SweepState.load(data, plan)
    if state is None:
        if data:
            log.warning("sweep_checkpoint_ignored", entity=plan["entity"],
                        why="made with another plan (buckets, mapping, key or format)")  # fmt: skip
        return SweepState.fresh(plan)
    state.resumes += 1
    log.info("sweep_resumed", entity=plan["entity"], phase=state.phase,
             legacy_scanned=state.legacy.scanned, target_scanned=state.target.scanned)  # fmt: skip
    return state


async def sweep(
    pool: AsyncConnectionPool[Any],
    em: Any,
    store: LegacyStore,
    canon: Canonicalizer,
    *,
    buckets: int = 4096,
    checkpoint: Checkpoint | None = None,
    in_flight: Callable[[], Awaitable[InFlight]] = nothing_in_flight,
    grace_s: float = 2.0,
    generations: int = 3,
    progress: bool = True,
    checkpoint_every_s: float = 5.0,
    chunk: int = 1000,
    max_findings: int = 100_000,
    mapping_digest: str | None = None,
) -> SweepResult:
    """Compare every record of `em` on both sides; resume from `checkpoint` if it holds a
    sweep of the same plan (`mapping_digest`: of the mapping `em` was compiled from, part
    of the plan). `progress`: a bar on a terminal, log lines otherwise."""
    if buckets < 1 or chunk < 1 or max_findings < 1:
        raise ConfigError("sweep: buckets, chunk and max_findings must be at least 1")
    started = time.monotonic()
    state = await _state(checkpoint, plan_of(em, canon, buckets, mapping_digest))
    meter = SweepProgress(em.name, enabled=progress)
    ctx = SweepContext(pool, em, store, canon, state, checkpoint, in_flight, meter, chunk,
                       checkpoint_every_s, max_findings)  # fmt: skip
    phases: dict[str, float] = {}
    try:
        if state.phase == DIGEST:
            await digest_phase(ctx, await _totals(pool, em, store) if progress else (None, None))
            state.phase = COMPARE
            await ctx.save()
            phases[DIGEST] = time.monotonic() - started
        differing = state.legacy.digests.differing(state.target.digests)
        if state.phase == COMPARE:
            t = time.monotonic()
            await compare_phase(ctx, differing)
            state.phase = RECHECK
            await ctx.save()
            phases[COMPARE] = time.monotonic() - t
        meter.close()
        t = time.monotonic()
        findings, in_flight_n = await recheck_phase(ctx, grace_s, generations)
        phases[RECHECK] = time.monotonic() - t
    except BaseException:
        with contextlib.suppress(Exception):
            await ctx.save()  # whole chunks only: what was counted is never read again
        raise
    finally:
        meter.close()
    cmp = state.compare
    same = state.legacy.digests.total() - state.legacy.digests.total(differing)
    result = SweepResult(
        em.name, sampled=same + cmp.checked, matched=same + cmp.matched, in_flight=in_flight_n,
        findings=findings, buckets=buckets, differing_buckets=len(differing),
        legacy_rows=state.legacy.digests.total(), target_rows=state.target.digests.total(),
        skipped_keys=state.legacy.skipped, compared=cmp.checked, scanned=dict(ctx.scanned),
        resumes=state.resumes, truncated=cmp.truncated, seconds=time.monotonic() - started,
        phase_seconds=phases,
    )  # fmt: skip
    log.info("sweep_done", entity=em.name, rows=result.sampled, matched=result.matched,
             drift=result.drift, in_flight=result.in_flight, differing_buckets=len(differing),
             buckets=buckets, seconds=round(result.seconds, 2))  # fmt: skip
    return result


async def run_sweep(
    pool: AsyncConnectionPool[Any],
    em: Any,
    store: LegacyStore,
    canon: Canonicalizer,
    *,
    group: str,
    resume: bool = True,
    buckets: int = 4096,
    mapping_digest: str | None = None,
    **kw: Any,
) -> tuple[int, SweepResult]:
    """One sweep as a verify_runs row (mode 'sweep'): resumed from the entity's running
    sweep of the same plan when `resume`, checkpointed into it, finished with its counts
    and findings; `kw` as for `sweep`. Raises `ConfigError` while another sweep of the
    entity is running (it holds one pool connection for its advisory lock)."""
    async with SweepLock(pool, em.name):
        plan = plan_of(em, canon, buckets, mapping_digest)
        run_id, _ = await open_sweep_run(pool, em.name, plan, group=group, resume=resume)
        result = await sweep(pool, em, store, canon, buckets=buckets,
                             checkpoint=RunCheckpoint(pool, run_id),
                             mapping_digest=mapping_digest, **kw)  # fmt: skip
        await finish_sweep_run(pool, run_id, result, group)
    return run_id, result
