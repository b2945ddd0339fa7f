"""Shadow reads: in `shadow` mode `ReadPath.read()` returns the legacy answer at once and
compares Postgres with it in the background.

What the app passes, and why. `ReadPath(client, shadow=ShadowConfig(mappings=ms,
pool=pool))`, then `read(entity, key, legacy, postgres)` as in every mode:

- `legacy(key)` must return the legacy document *as the legacy store holds it* (a dict,
  or None when there is no record): that is what the mapping understands;
- the Postgres side is NOT the app's `postgres(key)` (not called in shadow mode): its
  result is the app's own object, which has no honest way back into the mapping's terms.
  It is the entity's row and child rows read through the verifier's target query with the
  app's psycopg `AsyncConnectionPool`, canonicalised like the legacy document
  (shadow_compare.py). So a shadow mismatch means exactly what a `dualsync verify`
  mismatch means: what dualsync wrote differs from what the legacy store holds. The app's
  own Postgres read code is checked by its tests, not here.

The caller's cost: a sampling draw, a snapshot of the document (`dumps_payload`, what the
publisher does to it anyway), and `asyncio.create_task`; no await. The compare runs in the
background, on the app's event loop, admitted by three bounds: at most `max_inflight` at
once, their estimated CPU within the allowance derived from `budget_ms` (the compare CPU
ready to run when the caller's read completes is what can delay the caller, so that is
what is bounded), and at most `loop_share` of the loop's time over time (shadow_budget.py).
A sampled read that a bound refuses is counted `skipped`, never queued: on a busy loop
fewer reads are compared, the caller is not slowed. Each look at both sides is bounded by
`timeout_s`; a look that takes longer counts as `errors` and `timeouts`, never as a
mismatch.

A difference is read again (both sides, the legacy one through `legacy(key)`) after
`recheck_after_s`: an event still on its way explains a first difference, as the
verifier's grace reread does; what then matches counts `in_flight`, what still differs
counts `mismatched` with `field:<name>` per differing field. Counters per entity, in the
hash `shadow_key(prefix, entity)`: `reads` (shadow-mode reads seen), `matched`,
`mismatched`, `in_flight`, `errors`, `timeouts`, `skipped`, `over_budget`, `field:<name>`.

A/A mode (`aa_rate`): a sampled read is compared with a second read of the legacy side
through the same `legacy(key)`, canonicalised the same way, rechecked the same way. Over
unchanging data it must count zero mismatches; what it counts is the comparison's own
noise (writes between the two reads, a non-deterministic mapping). Its counters go to
`aa_key(prefix, entity)` (`<shadow hash>:aa`), never into the real mismatch rate. `aa_rate`
and `sample_rate` are drawn independently, so both can run at once.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aredis
from psycopg_pool import AsyncConnectionPool

from dualsync.errors import ConfigError, PermanentError
from dualsync.logging import get_logger
from dualsync.ops.verify.canon import Canonicalizer
from dualsync.producers.shadow_budget import CpuBudget, timed
from dualsync.producers.shadow_compare import EntityComparer, Side, snapshot
from dualsync.producers.shadow_counts import ShadowCounts
from dualsync.schema.mapping import MappingSet, load_enum_labels
from dualsync.schema.streams import shadow_key

__all__ = ["Shadow", "ShadowConfig", "aa_key"]

log = get_logger(__name__)
LegacyRead = Callable[[str], Awaitable[Any]]


def aa_key(prefix: str, entity: str) -> str:
    """A/A counters of one entity: the shadow hash's `:aa` sibling (entity names have no
    `:`, so it can never be another entity's shadow hash)."""
    return f"{shadow_key(prefix, entity)}:aa"


@dataclass(frozen=True, slots=True)
class ShadowConfig:
    """How shadow reads compare (see the module docstring)."""

    mappings: MappingSet
    pool: AsyncConnectionPool[Any]
    sample_rate: float = 1.0
    aa_rate: float = 0.0
    max_inflight: int = 32
    timeout_s: float = 1.0
    budget_ms: float = 5.0
    #: the share of the event loop's time compares may take over time
    loop_share: float = 0.2
    recheck_after_s: float = 0.5
    flush_every: int = 100
    flush_interval_s: float = 0.5
    #: the key of secret columns' fingerprints (both sides are fingerprinted in this
    #: process, so a random one is fine)
    fingerprint_key: bytes | None = None
    #: how long `aclose()` lets running compares finish before it drops them
    close_timeout_s: float = 2.0
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("sample_rate", "aa_rate", "loop_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"shadow {name} must be between 0 and 1")
        if self.max_inflight < 1 or self.flush_every < 1:
            raise ConfigError("shadow max_inflight and flush_every must be at least 1")
        if min(self.timeout_s, self.budget_ms, self.flush_interval_s) <= 0:
            raise ConfigError("shadow timeout_s, budget_ms and flush_interval_s must be > 0")


class Shadow:
    """The shadow comparisons of one `ReadPath`."""

    def __init__(self, cfg: ShadowConfig, client: aredis.Redis, prefix: str) -> None:
        self.cfg = cfg
        self._prefix = prefix
        self.counts = ShadowCounts(client, flush_every=cfg.flush_every,
                                   flush_interval_s=cfg.flush_interval_s)  # fmt: skip
        self._rng = random.Random(cfg.seed)  # sampling, not secrecy
        self._tasks: set[asyncio.Task[None]] = set()
        self._comparers: dict[str, EntityComparer] = {}
        self.budget = CpuBudget(cfg.budget_ms, share=cfg.loop_share)
        self._warned: set[tuple[str, str]] = set()
        self._key = cfg.fingerprint_key or random.SystemRandom().randbytes(32)
        self._enums_bound = False
        self._enum_lock = asyncio.Lock()

    @property
    def inflight(self) -> int:
        """Compares running now."""
        return len(self._tasks)

    def observe(self, entity: str, key: str, doc: Any, legacy: LegacyRead) -> None:
        """A shadow-mode read returned `doc`: maybe compare it, in the background.
        Synchronous: the caller's whole cost is here, and it never raises."""
        t = time.perf_counter()
        wanted = [(shadow_key(self._prefix, entity), self._rng.random() < self.cfg.sample_rate,
                   False)]  # fmt: skip
        if self.cfg.aa_rate > 0:
            wanted.append((aa_key(self._prefix, entity), self._rng.random() < self.cfg.aa_rate,
                           True))  # fmt: skip
        admitted: list[tuple[str, bool, float]] = []
        for h, sampled, is_aa in wanted:
            self.counts.add(h, "reads")
            if not sampled:
                continue
            full = len(self._tasks) + len(admitted) >= self.cfg.max_inflight
            held = None if full else self.budget.admit(entity)
            if held is None:
                self.counts.add(h, "skipped")
            else:
                admitted.append((h, is_aa, held))
        if not admitted:
            return  # the common case on a busy loop: no snapshot taken
        try:
            frozen = snapshot(doc)
        except (PermanentError, TypeError, ValueError) as exc:
            for h, _, held in admitted:
                self.budget.release(held)
                self.counts.add(h, "errors")
            self._warn(entity, "shadow_read_not_comparable", error=type(exc).__name__)
            return
        for h, is_aa, held in admitted:
            work = self._compare(h, entity, key, frozen, legacy, is_aa=is_aa, held=held)
            task = asyncio.create_task(work)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._over_budget(entity, time.perf_counter() - t, "caller")

    def _warn(self, entity: str, event: str, **kw: Any) -> None:
        if (entity, event) not in self._warned:  # once per entity: a log line per read floods
            self._warned.add((entity, event))
            log.warning(event, entity=entity, **kw)

    def _over_budget(self, entity: str, seconds: float, stage: str) -> None:
        """One stretch of loop time longer than the whole budget: counted and logged."""
        if seconds * 1000 > self.cfg.budget_ms:
            self.counts.add(shadow_key(self._prefix, entity), "over_budget")
            self._warn(entity, "shadow_compare_over_budget", stage=stage,
                       ms=round(seconds * 1000, 2), budget_ms=self.cfg.budget_ms,
                       hint="lower sample_rate for this entity")  # fmt: skip

    async def _comparer(self, entity: str) -> EntityComparer:
        found = self._comparers.get(entity)
        if found is not None:
            return found
        async with self._enum_lock:
            if not self._enums_bound:
                async with self.cfg.pool.connection() as conn:
                    labels = await load_enum_labels(conn, self.cfg.mappings)
                self.cfg.mappings.bind_enum_labels(labels)
                self._enums_bound = True
        em = self.cfg.mappings.entity(entity)
        found = EntityComparer(em, Canonicalizer(em, self._key), self.cfg.pool)
        self._comparers[entity] = found
        return found

    async def _compare(
        self, h: str, entity: str, legacy_key: str, frozen: bytes | None, legacy: LegacyRead,
        *, is_aa: bool, held: float,
    ) -> None:  # fmt: skip
        run = timed(self._outcome(entity, legacy_key, frozen, legacy, is_aa=is_aa))
        try:
            outcome = await run
        except asyncio.CancelledError:
            self.counts.add(h, "skipped")  # dropped by aclose(): never compared
            raise
        finally:
            self.budget.done(entity, held, run.total_s)
        self._over_budget(entity, run.longest_s, "compare")
        for name in outcome:
            self.counts.add(h, name)
        self.counts.compared()

    async def _outcome(
        self, entity: str, legacy_key: str, frozen: bytes | None, legacy: LegacyRead,
        *, is_aa: bool,
    ) -> list[str]:  # fmt: skip
        """The counter names one compare adds to: an outcome and, for a mismatch, its
        fields. Every failure is a count and a type name in the log, never a value."""
        try:
            cmp = await self._comparer(entity)
            key = cmp.key(legacy_key)

            def second() -> Side:
                return cmp.reread_side(key, legacy_key, legacy) if is_aa else cmp.target_side(key)

            async with asyncio.timeout(self.cfg.timeout_s):
                first = await cmp.look(cmp.legacy_side(key, frozen), second())
            if not first:
                return ["matched"]
            if self.cfg.recheck_after_s <= 0:
                return ["mismatched", *(f"field:{f}" for f in first)]
            await asyncio.sleep(self.cfg.recheck_after_s)
            async with asyncio.timeout(self.cfg.timeout_s):
                again = await cmp.look(cmp.reread_side(key, legacy_key, legacy), second())
        except TimeoutError:
            return ["errors", "timeouts"]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the app's read or a refused document: counted
            # the type and the mapping's field name only: a message may quote a value
            self._warn(entity, "shadow_compare_failed", error=type(exc).__name__,
                       field=getattr(exc, "field", None))  # fmt: skip
            return ["errors"]
        if not again:
            return ["in_flight"]
        return ["mismatched", *(f"field:{f}" for f in again)]

    async def drain(self) -> None:
        """Wait for the running compares, then flush the counters (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.counts.flush()

    async def aclose(self) -> None:
        """Let running compares finish for `close_timeout_s`, drop the rest (counted
        `skipped`), and flush every count."""
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks),
                                                timeout=self.cfg.close_timeout_s)  # fmt: skip
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
                log.info("shadow_compares_dropped_on_close", count=len(pending))
        await self.counts.aclose()
