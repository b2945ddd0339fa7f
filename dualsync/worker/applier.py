"""Applying one decoded batch: the transaction, ack after commit, bisection, dead letters.

Ack after commit: an entry is XACKed only after the transaction that applied it (or
the dead-letter write that records it) has committed, so a crash in between re-delivers
it and the version gate makes the repeat a no-op. The consumer (`consumer.py`) reads,
decodes and schedules; this half decides what a failure means (`retry.classify`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from psycopg_pool import AsyncConnectionPool

from dualsync.consumers.apply import apply_batch
from dualsync.consumers.change import Change
from dualsync.logging import bound_contextvars, get_logger
from dualsync.redisconn import AnyRedis
from dualsync.schema.mapping import MappingSet
from dualsync.worker.config import WorkerConfig
from dualsync.worker.deadletter import (
    DeadLetter,
    Redactor,
    dead_letter,
    error_text,
    traceback_text,
)
from dualsync.worker.decode import Decoded
from dualsync.worker.entry import Entry
from dualsync.worker.inflight import InFlight
from dualsync.worker.retry import Failure, classify, reason_of
from dualsync.worker.stats import Stats

__all__ = ["Applier", "Schedule"]

log = get_logger(__name__)


class Schedule(Protocol):
    """Retry these entries later (`counted`: a delivery that counts towards the limits)."""

    def __call__(self, entries: list[Entry], *, counted: bool) -> None: ...


class Applier:
    """Applies a consumer's batches and settles their failures."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        name: str,
        pool: AsyncConnectionPool[Any],
        redis: AnyRedis,
        mappings: MappingSet,
        stats: Stats,
        redactor: Redactor,
        inflight: InFlight,
        schedule: Schedule,
    ) -> None:
        self.config = config
        self.name = name
        self._pool = pool
        self._redis = redis
        self._ms = mappings
        self.stats = stats
        self._redactor = redactor
        self._inflight = inflight
        self._schedule = schedule

    def _entries_of(self, changes: list[Change], decoded: Decoded) -> list[Entry]:
        return [e for c in changes for e in decoded.owners[(c.entity, c.key)]]

    async def apply(
        self,
        changes: list[Change],
        decoded: Decoded,
        *,
        again: bool = True,
        staged: asyncio.Event | None = None,
    ) -> None:
        """Apply; on a data error bisect until the failing events are alone (`again`: a
        batch that fails on a missing parent may first be tried whole once more). `staged`
        is set once the rows are in Postgres's hands (see `apply_batch`)."""
        if not changes:
            return
        on_staged = staged.set if staged is not None else None
        try:
            async with self._inflight.applying(self.name), self._pool.connection() as conn:
                result = await apply_batch(conn, self._ms, changes, on_staged=on_staged)
        except Exception as exc:  # noqa: BLE001 - classified below; nothing is swallowed
            await self._on_failure(exc, changes, decoded, again=again)
            return
        entries = self._entries_of(changes, decoded)
        await self._ack(entries)
        self.stats.count_apply(result, changes, entries)

    async def _on_failure(
        self, exc: Exception, changes: list[Change], decoded: Decoded, *, again: bool
    ) -> None:
        """Systemic: retry the batch (uncounted). A transient data error (a parent not yet
        committed) in a batch read for the first time: wait for the batches this process's
        other consumers have in hand, then try it whole once more. Anything else: bisect
        until the failing change is alone, then retry it (counted) or dead-letter it (see
        `retry`)."""
        kind = classify(exc)
        entries = self._entries_of(changes, decoded)
        if kind is Failure.SYSTEMIC:
            log.error("batch_failed_will_retry", error=error_text(exc), events=len(entries))
            self._schedule(entries, counted=False)
            return
        if (
            again
            and kind is Failure.DATA_TRANSIENT
            and len(changes) > 1
            and all(e.deliveries == 1 for e in entries)
            and await self._inflight.others_done(self.name, self.config.settle_timeout_s)
        ):
            self.stats.settled += 1
            log.info("batch_waited_for_siblings", reason=reason_of(exc), events=len(entries))
            await self.apply(changes, decoded, again=False)
            return
        if len(changes) > 1:
            mid = len(changes) // 2
            self.stats.bisections += 1
            await self.apply(changes[:mid], decoded, again=False)
            await self.apply(changes[mid:], decoded, again=False)
            return
        change = changes[0]
        reason = reason_of(exc)
        text = self._redactor.scrub(error_text(exc), change.entity, entries)
        extra: dict[str, str] = {}
        if kind is Failure.INTERNAL:  # nobody foresaw it: the traceback helps, scrubbed
            extra["traceback"] = self._redactor.scrub(traceback_text(exc), change.entity, entries)
        with bound_contextvars(entity=change.entity, key=change.key, event_id=change.event_id):
            if max(e.deliveries for e in entries) < self._limit(kind):
                log.warning("event_failed_will_retry", reason=reason, error=text, **extra)
                self._schedule(entries, counted=True)
                return
            log.error("event_dead_lettered", reason=reason, error=text, **extra)
        decoded.letters.extend(
            DeadLetter(e, reason, text, change.entity, change.key, change.event_id) for e in entries
        )

    def _limit(self, kind: Failure) -> int:
        """Deliveries before an isolated failure of this kind is dead-lettered."""
        if kind is Failure.INVALID:
            return 0  # our own verdict on the input: retrying it cannot help
        if kind is Failure.DATA_TRANSIENT:
            return self.config.transient_max_deliveries
        return self.config.max_deliveries

    async def _ack(self, entries: list[Entry]) -> None:
        by_stream: dict[str, list[str]] = {}
        for e in entries:
            by_stream.setdefault(e.stream, []).append(e.id)
        if not by_stream:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, self.config.group, *ids)
            await pipe.execute()

    async def dead_letter(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        for d in letters:
            log.warning(
                "dead_letter", reason=d.reason, entity=d.entity, key=d.key, event_id=d.event_id
            )
        await dead_letter(
            self._redis, self.config.prefix, self.config.group, self.name, letters, self._redactor
        )
        self.stats.count_dead_letters(letters)
