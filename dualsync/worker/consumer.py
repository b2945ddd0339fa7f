"""The stream consumer: read -> decode -> collapse -> apply -> ack, with retries.

It gathers a batch (due retries, reclaimed entries, new ones), decodes it, and hands it
to its `Applier` (applier.py: the transaction, ack after commit, bisection, dead
letters); while that batch is in Postgres it gathers and decodes the next.
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

from dualsync.consumers.change import Change, in_key_order
from dualsync.errors import ServiceUnavailableError
from dualsync.logging import bound_contextvars, get_logger
from dualsync.redisconn import AnyRedis
from dualsync.schema.legacy import LegacyReader
from dualsync.schema.mapping import MappingSet
from dualsync.schema.streams import UNREACHABLE, stream_keys
from dualsync.worker.applier import Applier
from dualsync.worker.config import WorkerConfig
from dualsync.worker.deadletter import Redactor
from dualsync.worker.decode import Decoded, decode_batch
from dualsync.worker.entry import Entry
from dualsync.worker.inflight import InFlight
from dualsync.worker.reader import StreamReader
from dualsync.worker.reclaim import claim_for_retry, reclaim_idle, touch_for_retry
from dualsync.worker.retry import backoff
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
    #: set when its rows are COPYed and the rest of its transaction is Postgres's work
    staged: asyncio.Event = field(default_factory=asyncio.Event)


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
        self._applier = Applier(
            config, name=name, pool=pool, redis=redis, mappings=mappings, stats=self.stats,
            redactor=self._redactor, inflight=inflight or InFlight(), schedule=self._schedule,
        )  # fmt: skip

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
        groups = False
        self._next_reclaim = 0.0
        idle_since: float | None = None
        outage_since: float | None = None
        attempt = 0
        while not self._stop.is_set():
            try:
                if not groups:  # inside the ride-through: Redis may blink at start too
                    await self.reader.ensure_groups()
                    groups = True
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
                # Decode once the batch's rows are staged: before that the commit has
                # Python work of its own (rows, COPY) that decoding would only delay.
                await _first(commit, batch.staged)
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
        """Decode and map a batch; schedule what must be retried; sort the rest."""
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
        # one change per key already (decode_batch): only the lock order is left to set
        return _Batch(batch_id, started, decoded, in_key_order(decoded.changes))

    async def _commit(self, batch: _Batch) -> None:
        """Apply a prepared batch, ack it, write its dead letters."""
        with bound_contextvars(batch_id=batch.batch_id, consumer=self.name):
            await self._applier.apply(batch.changes, batch.decoded, staged=batch.staged)
            await self._applier.dead_letter(batch.decoded.letters)
            self.stats.batch_done(batch.started)


async def _first(task: asyncio.Task[None], event: asyncio.Event) -> None:
    """Wait until `event` is set or `task` is done, whichever comes first."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
