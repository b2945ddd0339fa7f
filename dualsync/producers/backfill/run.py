"""The backfill run: snapshot every entity of a mapping, parents first, resumably.

Correctness while the app keeps writing comes from the version gate, so the versions
are what matter (docs/architecture.md, Backfilling):
- an entity with a `version_field` carries each document's own version;
- otherwise every event of the run carries `run start (µs) - clock skew`: a live write
  after a document was read has a later version and wins; one before it is already in
  the content read. The version is fixed per run and kept in the checkpoint, so a
  resumed run re-sends a crashed chunk with the same versions: stale, not applied twice.

Entities go in foreign-key order; within one, `workers` key ranges run concurrently.
After each chunk the sink has made it durable and the checkpoint records the last key,
so a crash or Ctrl-C loses nothing and repeats at most one chunk per range. With a
`StagedSink` the next chunks are read and mapped while one commits (pipeline.py); they
are recorded only once committed, in key order, so that changes nothing of the above.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dualsync.errors import ConfigError
from dualsync.gctune import fewer_collections
from dualsync.logging import get_logger
from dualsync.producers.backfill.checkpoint import (
    Checkpoint,
    EntityProgress,
    Segment,
    write_durably,
)
from dualsync.producers.backfill.pipeline import ahead
from dualsync.producers.backfill.progress import Progress
from dualsync.producers.backfill.sink import BadDoc, Prepared, SendResult, Sink, StagedSink
from dualsync.schema.legacy import LegacyRecord, LegacyStore
from dualsync.schema.mapping import MappingSet
from dualsync.schema.mapping.order import dependency_order

__all__ = [
    "Backfill",
    "BackfillOptions",
    "open_checkpoint",
    "select_entities",
    "split_segments",
]

log = get_logger(__name__)


def _wall_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    """How a run reads, sends and records its progress."""

    checkpoint: Path
    mode: str = "stream"
    entities: tuple[str, ...] = ()
    workers: int = 1
    chunk: int = 1000
    clock_skew_ms: int = 1000
    resume: bool = False
    restart: bool = False
    #: with `mode="direct"`: processes that each read, map and apply their own key ranges
    #: (processes.py); None: `auto_processes()`, or the count a resumed run started with
    processes: int | None = 1
    #: the clock the run's version is taken from (tests move it to simulate skew)
    now_us: Callable[[], int] = _wall_us


def select_entities(
    ms: MappingSet, stores: Mapping[str, LegacyStore], wanted: tuple[str, ...]
) -> list[str]:
    """The entities a run covers, in foreign-key order: `wanted` (all when empty) among
    those with a store; an unknown name raises `ConfigError`."""
    order = [n for n in dependency_order(ms) if n in stores]
    if not wanted:
        return order
    unknown = sorted(set(wanted) - set(order))
    if unknown:
        raise ConfigError(
            f"no source for {', '.join(unknown)} in {ms.path.name} "
            f"(entities with a source: {', '.join(order) or 'none'})"
        )
    return [n for n in order if n in wanted]


def open_checkpoint(ms: MappingSet, opts: BackfillOptions) -> Checkpoint:
    """The checkpoint a run starts from: the saved one with `resume`, else a new one with
    the run's version; refuses another app's, or an unfinished run without `restart`."""
    try:
        cp = Checkpoint.load_run(opts.checkpoint)
    except ConfigError:
        if not opts.restart:
            raise
        cp = None  # unreadable, and the run starts over anyway
    if cp is not None and cp.app != ms.app:
        raise ConfigError(f"{opts.checkpoint} belongs to app {cp.app!r}, not {ms.app!r}")
    if opts.resume:
        if cp is None:
            raise ConfigError(f"nothing to resume: no checkpoint at {opts.checkpoint}")
        return cp
    if cp is not None and not cp.done and not opts.restart:
        raise ConfigError(
            f"a backfill of {cp.app} started {cp.started_at} did not finish "
            f"({opts.checkpoint}): pass --resume to continue it, or --restart to start over"
        )
    version = opts.now_us() - opts.clock_skew_ms * 1000
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return Checkpoint(app=ms.app, mode=opts.mode, version=version, started_at=started)


async def split_segments(store: LegacyStore, parts: int) -> tuple[int, list[Segment]]:
    """(record count, `parts` contiguous key ranges of about equal size)."""
    keys = [k async for chunk in store.iter_keys(chunk=10_000) for k in chunk]
    if parts <= 1 or len(keys) < parts * 2:
        return len(keys), [Segment()]
    size = -(-len(keys) // parts)
    segs = []
    for i in range(0, len(keys), size):
        last = keys[min(i + size, len(keys)) - 1]
        segs.append(Segment(start_after=keys[i - 1] if i else None, last=last))
    segs[-1].last = None  # the last range runs to the end: keys created meanwhile too
    return len(keys), segs


@dataclass(slots=True)
class Backfill:
    """One run over a mapping's entities."""

    ms: MappingSet
    stores: dict[str, LegacyStore]
    sink: Sink
    options: BackfillOptions
    progress: Progress = field(default_factory=Progress)
    bad: list[BadDoc] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def stop(self) -> None:
        """Finish the chunks in hand, record them, and return (Ctrl-C, SIGTERM)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """True when `stop()` cut the run short."""
        return self._stop.is_set()

    def _entities(self) -> list[str]:
        return select_entities(self.ms, self.stores, self.options.entities)

    def _open_checkpoint(self) -> Checkpoint:
        cp = open_checkpoint(self.ms, self.options)
        if cp.processes > 1 and cp.part is None:
            raise ConfigError(
                f"{self.options.checkpoint} is a run of {cp.processes} processes: resume it "
                f"with --direct --processes {cp.processes}"
            )
        return cp

    async def run(self) -> Checkpoint:
        """Snapshot every selected entity; return the final checkpoint."""
        with fewer_collections():
            return await self._run()

    async def _run(self) -> Checkpoint:
        names = self._entities()
        cp = self._open_checkpoint()
        cp.save(self.options.checkpoint)
        sent: set[str] = set()
        for name in names:
            if self._stop.is_set():
                break
            if self.ms.entity(name).depends_on & sent:
                await self.sink.wait_applied()  # parents applied before their children go
                sent.clear()
            ep = cp.entities.get(name)
            if ep is None:
                total, segs = await split_segments(self.stores[name], self.options.workers)
                ep = cp.entities[name] = EntityProgress(total=total, segments=segs)
                cp.save(self.options.checkpoint)
            sent.add(name)
            if ep.done:
                continue
            self.progress.start(name, ep.total, ep.sent)
            await asyncio.gather(*(self._segment(cp, name, s) for s in ep.segments if not s.done))
            self.progress.finish(name, ep.sent, ep.bad)
        return cp

    async def _range(self, name: str, seg: Segment) -> AsyncGenerator[list[LegacyRecord], None]:
        """The chunks of one key range, from where its progress left off to its last key."""
        store = self.stores[name]
        last = None if seg.last is None else store.sort_key(seg.last)
        after = seg.progress or seg.start_after
        async for records in store.iter_records(after=after, chunk=self.options.chunk):
            chunk = records if last is None else [
                r for r in records if store.sort_key(r.key) <= last
            ]  # fmt: skip
            if chunk:
                yield chunk
            if len(chunk) < len(records):
                return  # past the end of this range
            if last is not None and chunk and store.sort_key(chunk[-1].key) >= last:
                return

    def _split(self, cp: Checkpoint, name: str, chunk: list[LegacyRecord]) -> _Chunk:
        """The chunk's records with a version, their versions, and those without one."""
        if self.ms.entity(name).version_field is None:
            return _Chunk(chunk, chunk, [cp.version] * len(chunk), [])
        ok = [r for r in chunk if r.version is not None]
        versions = [r.version for r in ok if r.version is not None]
        return _Chunk(chunk, ok, versions, [r for r in chunk if r.version is None])

    async def _segment(self, cp: Checkpoint, name: str, seg: Segment) -> None:
        sink = self.sink
        chunks = self._range(name, seg)
        if isinstance(sink, StagedSink):
            # Read and map the next chunks while this one commits (pipeline.py).
            async def ready(chunk: list[LegacyRecord]) -> tuple[_Chunk, Prepared]:
                c = self._split(cp, name, chunk)
                return c, await asyncio.to_thread(sink.prepare, name, c.ok, c.versions)

            async with contextlib.aclosing(ahead(chunks, ready)) as staged:
                async for c, prepared in staged:
                    await self._record(cp, name, seg, c, await sink.commit(prepared))
                    if self._stop.is_set():
                        break
        else:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    c = self._split(cp, name, chunk)
                    await self._record(cp, name, seg, c, await sink.send(name, c.ok, c.versions))
                    if self._stop.is_set():
                        break
        if not self._stop.is_set():
            async with self._lock:
                seg.done = True
                await self._save(cp)

    async def _save(self, cp: Checkpoint) -> None:
        """Write the checkpoint (under `_lock`): taken here, made durable in a thread."""
        await asyncio.to_thread(write_durably, self.options.checkpoint, cp.dump())

    async def _record(
        self, cp: Checkpoint, name: str, seg: Segment, c: _Chunk, result: SendResult
    ) -> None:
        """Record a chunk the sink made durable: the checkpoint never runs ahead of it."""
        bad = result.bad + [
            BadDoc(
                name, r.key, "no_version", "the mapping's version_field is missing or unreadable"
            )
            for r in c.unversioned
        ]
        for b in bad:
            log.warning("backfill_bad_document", entity=b.entity, key=b.key,
                        reason=b.reason, error=b.error)  # fmt: skip
        self.bad.extend(bad)
        async with self._lock:
            seg.progress = c.records[-1].key
            seg.sent += result.sent
            seg.bad += len(bad)
            await self._save(cp)
        self.progress.advance(name, len(c.records))


@dataclass(frozen=True, slots=True)
class _Chunk:
    """One chunk on its way: every record read (the last one is the checkpoint's key), the
    ones sent with their versions, and the ones without a version."""

    records: list[LegacyRecord]
    ok: list[LegacyRecord]
    versions: list[int]
    unversioned: list[LegacyRecord]
