"""Counters of one worker process: totals, per entity and per dead-letter reason.

The consumers count here, on the event loop, once per batch with plain dict arithmetic;
the metrics endpoint (`worker.metrics`, in its own thread) and the Redis counters behind
`dualsync status` (`worker.counters`) read copies. An optional `StatsObserver` receives the
timings that only a histogram can keep (batch seconds, end-to-end lag).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dualsync.consumers.apply import ApplyResult
    from dualsync.consumers.change import Change
    from dualsync.worker.deadletter import DeadLetter
    from dualsync.worker.entry import Entry

__all__ = ["APPLIED", "DEAD_LETTERED", "DELETED", "STALE", "Stats", "StatsObserver", "split"]

#: per-entity counter names: the `<counter>:<entity>` fields of `schema.streams.worker_stats_key`
APPLIED = "applied"
DELETED = "deleted"
STALE = "stale"
DEAD_LETTERED = "dead_lettered"
_OCCURRED_AT = b"occurred_at"


class StatsObserver(Protocol):
    """Receives what counters cannot hold: durations, for histograms."""

    def batch_seconds(self, seconds: float) -> None:
        """One batch took this long, read to ack."""

    def lags(self, seconds: Sequence[tuple[float, int]]) -> None:
        """Now minus `occurred_at` of the events just applied (or found stale), as
        (seconds, events): events of one publish call share their timestamp."""


@dataclass(slots=True)
class Stats:
    """Monotonic counters since the process started."""

    read: int = 0
    applied: int = 0
    deleted: int = 0
    stale: int = 0
    dead_lettered: int = 0
    retried: int = 0
    bisections: int = 0
    #: batches tried whole again after this process's other consumers committed theirs
    settled: int = 0
    batches: int = 0
    redis_errors: int = 0
    #: monotonic time the first batch was read (for benchmarks: excludes start-up)
    first_batch_at: float = field(default=0.0, compare=False)
    #: monotonic time the last batch finished (for benchmarks: excludes idle waiting)
    last_batch_done: float = field(default=0.0, compare=False)
    #: `<counter>:<entity>` -> count (`applied`, `deleted`, `stale`, `dead_lettered`)
    by_entity: dict[str, int] = field(default_factory=dict, compare=False)
    #: dead-letter reason -> count
    by_reason: dict[str, int] = field(default_factory=dict, compare=False)
    observer: StatsObserver | None = field(default=None, compare=False, repr=False)
    #: called when a batch is done (wakes the Redis counters' flusher; must not block)
    on_batch: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type == "int"}

    def _add(self, counter: str, entity: str, n: int) -> None:
        if n:
            k = f"{counter}:{entity}"
            self.by_entity[k] = self.by_entity.get(k, 0) + n

    def count_apply(
        self, result: ApplyResult, changes: Sequence[Change], entries: Sequence[Entry]
    ) -> None:
        """Count one committed apply: totals, then per entity (see `split`), then the lag."""
        dups = len(entries) - len(changes)  # collapsed away within the batch: stale too
        self.applied += result.applied
        self.deleted += result.deleted
        self.stale += result.stale + dups
        for entity, (a, d, s) in split(result, changes, entries).items():
            self._add(APPLIED, entity, a)
            self._add(DELETED, entity, d)
            self._add(STALE, entity, s)
        if self.observer is not None:
            self.observer.lags(_lags(entries))

    def count_dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        """Count dead letters written, per entity and per reason."""
        for d in letters:
            self.dead_lettered += 1
            self._add(DEAD_LETTERED, d.entity or "-", 1)
            self.by_reason[d.reason] = self.by_reason.get(d.reason, 0) + 1

    def batch_done(self, started: float) -> None:
        """A batch read at monotonic `started` is finished (acked or scheduled)."""
        self.batches += 1
        self.last_batch_done = time.monotonic()
        if self.observer is not None:
            self.observer.batch_seconds(self.last_batch_done - started)
        if self.on_batch is not None:
            self.on_batch()


def _lags(entries: Sequence[Entry]) -> list[tuple[float, int]]:
    """(lag, events) per distinct `occurred_at`: one parse per timestamp, not per event."""
    counts: dict[bytes, int] = {}
    for e in entries:
        raw = e.fields.get(_OCCURRED_AT)
        if raw is not None:
            counts[raw] = counts.get(raw, 0) + 1
    now = time.time()
    out: list[tuple[float, int]] = []
    for raw, n in counts.items():
        try:
            out.append((now - dt.datetime.fromisoformat(raw.decode()).timestamp(), n))
        except ValueError:  # decode validated it; a malformed one is not worth a failure
            continue
    return out


def split(
    result: ApplyResult, changes: Sequence[Change], entries: Sequence[Entry]
) -> dict[str, tuple[int, int, int]]:
    """(applied, deleted, stale) per entity of one committed apply, summing to the totals.

    `apply_batch` reports totals only. Duplicates collapsed within the batch are counted per
    entity exactly (entries minus changes of that entity). When the batch holds one entity, or
    nothing lost the version gate, every number is exact: a winning upsert is applied, a
    winning delete deleted. Only a batch of several entities with gate losers is apportioned:
    applied over upserts, deleted over deletes, by largest remainder (totals stay exact).
    """
    upserts: dict[str, int] = {}
    deletes: dict[str, int] = {}
    for c in changes:
        bucket = deletes if c.deleted else upserts
        bucket[c.entity] = bucket.get(c.entity, 0) + 1
    seen: dict[str, int] = {}
    if len(entries) != len(changes):  # duplicates were collapsed: whose?
        raw: dict[bytes, int] = {}
        for entry in entries:
            name = entry.fields.get(b"entity", b"")
            raw[name] = raw.get(name, 0) + 1
        seen = {k.decode(errors="replace"): n for k, n in raw.items()}
    entities = sorted(set(upserts) | set(deletes))
    applied = _apportion(result.applied, {e: upserts.get(e, 0) for e in entities})
    deleted = _apportion(result.deleted, {e: deletes.get(e, 0) for e in entities})
    out: dict[str, tuple[int, int, int]] = {}
    for e in entities:
        n = upserts.get(e, 0) + deletes.get(e, 0)
        gate_stale = n - applied[e] - deleted[e]
        out[e] = (applied[e], deleted[e], gate_stale + max(seen.get(e, n) - n, 0))
    return out


def _apportion(total: int, weights: dict[str, int]) -> dict[str, int]:
    """`total` shared by `weights` (each share at most its weight), largest remainder first."""
    whole = sum(weights.values())
    if whole == 0 or total >= whole:
        return dict(weights) if whole else dict.fromkeys(weights, 0)
    shares = {k: total * w // whole for k, w in weights.items()}
    left = total - sum(shares.values())
    by_rest = sorted(weights, key=lambda k: (-(total * weights[k] % whole), k))
    for k in by_rest[:left]:
        shares[k] += 1
    return shares
