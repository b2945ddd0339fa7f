"""The stream consumer: read -> decode -> collapse -> apply -> ack, with retries and bisection.

Ack after commit: an entry is XACKed only after the transaction that applied it (or
the dead-letter write that records it) has committed, so a crash in between re-delivers
it and the version gate makes the repeat a no-op.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dualsync.consumers.apply import apply_batch
from dualsync.consumers.change import Change, collapse
from dualsync.errors import ServiceUnavailableError
from dualsync.logging import bound_contextvars, get_logger
from dualsync.redisconn import AnyRedis
from dualsync.schema.legacy import LegacyReader
from dualsync.schema.mapping import MappingSet
from dualsync.schema.streams import UNREACHABLE, stream_keys
from dualsync.worker.config import WorkerConfig
from dualsync.worker.deadletter import (
    DeadLetter,
    Redactor,
    dead_letter,
    error_text,
    traceback_text,
)
from dualsync.worker.decode import Decoded, decode_batch
from dualsync.worker.entry import Entry
from dualsync.worker.inflight import InFlight
from dualsync.worker.reader import StreamReader
from dualsync.worker.reclaim import claim_for_retry, reclaim_idle, touch_for_retry
from dualsync.worker.retry import Failure, backoff, classify, reason_of
from dualsync.worker.stats import Stats

__all__ = ["Consumer"]

log = get_logger(__name__)


@dataclass(order=True, slots=True)
class _Retry:
    due: float
    seq: int
    entries: list[Entry] = field(compare=False)
    #: a data-failure retry (a delivery that counts) or an outage retry (does not count)
    counted: bool = field(compare=False)


@dataclass(slots=True)
class _Batch:
    """A decoded batch waiting for (or in) its transaction."""

    batch_id: str
    started: float
    decoded: Decoded
    changes: list[Change]


class Consumer:
    """One consumer of group `apply` on every shard stream."""

    def __init__(
        self,
        config: WorkerConfig,
        *,
        name: str,
        pool: AsyncConnectionPool[Any],
        redis: AnyRedis,
        block_redis: AnyRedis,
        mappings: MappingSet,
        legacy: LegacyReader | None = None,
        signing_keys: Mapping[str, bytes] | None = None,
        stats: Stats | None = None,
        inflight: InFlight | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self._pool = pool
        self._redis = redis
        self._ms = mappings
        self._legacy = legacy
        self._keys = dict(signing_keys or {})
        self.streams = stream_keys(config.prefix, config.shards)
        self.reader = StreamReader(
            block_redis,
            self.streams,
            config.group,
            name,
            batch_size=config.batch_size,
            linger_ms=config.linger_ms,
            block_ms=config.block_ms,
        )
        self.stats = stats or Stats()
        self._retries: list[_Retry] = []
        self._seq = itertools.count()
        self._stop = asyncio.Event()
        self._next_reclaim = 0.0
        #: the next batch, read and decoded while the one before it was in Postgres
        self._ahead: _Batch | None = None
        self._redactor = Redactor(mappings)
        #: the consumers of this process applying batches (shared; see `inflight`)
        self._inflight = inflight or InFlight()

    def stop(self) -> None:
        """Finish the batch in hand, then return from `run`."""
        self._stop.set()

    async def run(self, *, until_idle: float | None = None) -> None:
        """Consume until `stop()`; with `until_idle`, also return once the group has been
        fully drained (nothing new, nothing pending anywhere) for that many seconds.

        A Redis outage is waited out with backoff for `redis_outage_s`; after that the
        consumer raises `ServiceUnavailableError`, which stops the worker loudly (a
        consumer that idles on a dead connection is the silent stall to avoid). Nothing is
        lost meanwhile: unacked entries stay pending and are reclaimed.
        """
        await self.reader.ensure_groups()
        self._next_reclaim = 0.0
        idle_since: float | None = None
        outage_since: float | None = None
        attempt = 0
        while not self._stop.is_set():
            try:
                worked = await self._turn()
            except UNREACHABLE as exc:
                now = time.monotonic()
                outage_since = outage_since or now
                if now - outage_since >= self.config.redis_outage_s:
                    raise ServiceUnavailableError(
                        f"Redis unreachable for {now - outage_since:.0f} s ({exc}); "
                        "check REDIS_URL and the server, then restart the worker"
                    ) from exc
                self.stats.redis_errors += 1
                attempt += 1
                log.warning("redis_unreachable_will_retry", error=str(exc), consumer=self.name)
                await asyncio.sleep(backoff(attempt, 0.1, 5.0))
                continue
            outage_since, attempt = None, 0
            if worked:
                idle_since = None
                continue
            if until_idle is not None and not self._retries:
                now = time.monotonic()
                idle_since = idle_since or now
                if now - idle_since >= until_idle and await self._group_drained():
                    return
        if self._ahead is not None:  # in hand: finish it before returning
            batch, self._ahead = self._ahead, None
            await self._commit(batch)

    async def _turn(self) -> bool:
        """One round: apply the batch in hand (or gather one) and, while its transaction
        is in Postgres, gather and decode the next, so decoding overlaps the database's
        work. Batches still commit one after another, in the order they were read: a
        batch's parents are committed before the next batch's children are applied."""
        batch = self._ahead
        self._ahead = None
        if batch is None:
            entries = await self._gather(have_work=False)
            if not entries:
                return False
            batch = await self._prepare(entries)
        commit = asyncio.create_task(self._commit(batch), name=f"commit:{self.name}")
        try:
            entries = await self._gather(have_work=True)
            if entries:
                self._ahead = await self._prepare(entries)
        finally:
            await commit  # an error of either is raised; the batch ahead stays in hand
        return True

    async def _gather(self, *, have_work: bool) -> list[Entry]:
        """Due retries, reclaimed entries and new ones (blocking only with no work)."""
        entries = await self._due_retries()
        if time.monotonic() >= self._next_reclaim:
            claimed = await reclaim_idle(
                self._redis, self.streams, self.config.group, self.name,
                self.config.claim_idle_ms, self.config.batch_size,
            )  # fmt: skip
            self._next_reclaim = time.monotonic() + self.config.reclaim_every_s
            if claimed:
                log.info("reclaimed_pending", consumer=self.name, entries=len(claimed))
            entries += claimed
        # New entries are read on every turn, so retries never starve them (a child
        # waiting for its parent must not stop the parent from being read).
        room = self.config.batch_size - len(entries)
        if room > 0:
            block = self._block_ms(have_work or bool(entries))
            entries += await self.reader.read_batch(room, block)
        return entries

    def _block_ms(self, have_entries: bool) -> int | None:
        """How long XREADGROUP may block: not at all with work in hand, else until the
        next retry is due (at most `block_ms`)."""
        if have_entries:
            return None
        if not self._retries:
            return self.config.block_ms
        wait = int((self._retries[0].due - time.monotonic()) * 1000)
        return None if wait <= 0 else min(wait, self.config.block_ms)

    async def _group_drained(self) -> bool:
        for s in self.streams:
            info = await self._redis.xpending(s, self.config.group)
            if int(info["pending"]):
                return False
        return True

    async def _due_retries(self) -> list[Entry]:
        now = time.monotonic()
        counted: list[Entry] = []
        outage: list[Entry] = []
        while self._retries and self._retries[0].due <= now:
            r = heapq.heappop(self._retries)
            (counted if r.counted else outage).extend(r.entries)
        if not counted and not outage:
            return []
        self.stats.retried += len(counted) + len(outage)
        group = self.config.group
        out = await claim_for_retry(self._redis, group, self.name, counted) if counted else []
        if outage:
            out += await touch_for_retry(self._redis, group, self.name, outage)
        return out

    def _schedule(self, entries: list[Entry], *, counted: bool) -> None:
        """Retry later. A counted retry (a data failure) re-claims with a delivery that
        counts towards the limits; an outage retry does not (see `reclaim`), and backs off
        by its own count of consecutive outage retries."""
        if counted:
            attempt = max(e.deliveries for e in entries)
        else:
            for e in entries:
                e.outage_retries += 1
            attempt = max(e.outage_retries for e in entries)
        delay = backoff(attempt, self.config.retry_base_s, self.config.retry_cap)
        due = time.monotonic() + delay
        heapq.heappush(self._retries, _Retry(due, next(self._seq), entries, counted))

    async def process(self, entries: list[Entry]) -> None:
        """Apply one batch of entries end to end."""
        await self._commit(await self._prepare(entries))

    async def _prepare(self, entries: list[Entry]) -> _Batch:
        """Decode and map a batch; schedule what must be retried; collapse the rest."""
        batch_id = uuid.uuid4().hex[:12]
        started = time.monotonic()
        if not self.stats.first_batch_at:
            self.stats.first_batch_at = started
        with bound_contextvars(batch_id=batch_id, consumer=self.name):
            self.stats.read += len(entries)
            decoded = await decode_batch(
                entries,
                self._ms,
                legacy=self._legacy,
                max_payload_bytes=self.config.max_payload_bytes,
                signing_keys=self._keys,
                require_signature=self.config.require_signature,
                max_deliveries=self.config.max_deliveries,
                redactor=self._redactor,
            )
            if decoded.retry:
                self._schedule(decoded.retry, counted=False)
            if decoded.retry_counted:
                self._schedule(decoded.retry_counted, counted=True)
        return _Batch(batch_id, started, decoded, collapse(decoded.changes))

    async def _commit(self, batch: _Batch) -> None:
        """Apply a prepared batch, ack it, write its dead letters."""
        with bound_contextvars(batch_id=batch.batch_id, consumer=self.name):
            await self._apply(batch.changes, batch.decoded)
            await self._dead_letter(batch.decoded.letters)
            self.stats.batch_done(batch.started)

    def _entries_of(self, changes: list[Change], decoded: Decoded) -> list[Entry]:
        return [e for c in changes for e in decoded.owners[(c.entity, c.key)]]

    async def _apply(self, changes: list[Change], decoded: Decoded, *, again: bool = True) -> None:
        """Apply; on a data error bisect until the failing events are alone (`again`: a
        batch that fails on a missing parent may first be tried whole once more)."""
        if not changes:
            return
        try:
            async with self._inflight.applying(self.name), self._pool.connection() as conn:
                result = await apply_batch(conn, self._ms, changes)
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
            await self._apply(changes, decoded, again=False)
            return
        if len(changes) > 1:
            mid = len(changes) // 2
            self.stats.bisections += 1
            await self._apply(changes[:mid], decoded, again=False)
            await self._apply(changes[mid:], decoded, again=False)
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

    async def _dead_letter(self, letters: list[DeadLetter]) -> None:
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
