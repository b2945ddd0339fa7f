"""`Publisher`: the async SDK a legacy Python application calls after each write.

Happy path: one pipelined XADD per call (`publish_many` sends any number in one round
trip). When Redis is unreachable the events go to the local fsynced spool and the call
still succeeds; while anything is spooled, new events are spooled behind it so per-key
order holds; a background task drains the spool, in order, once Redis answers.

The drain never dies: an outage is waited out every `retry_interval`; any other error
(a Redis `ResponseError` such as WRONGTYPE or OOM, a disk error) is logged and retried
with exponential backoff, and `spooling` stays true meanwhile. Spool files adopted from
a dead process start draining on their own (`async with`, `start()`, or construction
inside a running loop), not at the first publish. `aclose()` gives the last drain at most
`close_timeout` seconds, so a Redis that accepts connections but never answers cannot
hang shutdown; what is left stays spooled for the next publisher.

On a Redis Cluster (`redisconn.connect` with a `redis+cluster://` URL) the same code
works: every XADD names one shard stream, and the pipelines are non-transactional, which
redis-py's cluster pipeline splits per node (a MULTI across slots would not be possible).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from redis.exceptions import RedisError, ResponseError

from dualsync.logging import get_logger
from dualsync.producers.builder import BuiltEvent, EventBuilder, EventSpec, Published
from dualsync.producers.clock import HybridClock
from dualsync.producers.domains import VersionDomains
from dualsync.producers.spool import Spool, SpoolEntry, SpoolFile
from dualsync.redisconn import AnyRedis
from dualsync.schema.envelope import Op
from dualsync.schema.streams import UNREACHABLE
from dualsync.settings import Settings

__all__ = ["CLOCK_FILE", "UNREACHABLE", "Publisher"]

log = get_logger(__name__)

DRAIN_CHUNK: Final = 500
#: the longest wait between drain attempts after errors other than an outage
MAX_BACKOFF: Final = 30.0
#: the clock's high-water mark, kept in the spool directory
CLOCK_FILE: Final = "clock.hwm"


def _describe(exc: BaseException) -> str:
    # Unannotated Redis errors carry the server's message only, never the command's values.
    return str(exc)[:200]


class Publisher:
    """Async publisher. Use as `async with Publisher(...) as pub:` or call `aclose()`.

    `app_versions`: entities whose every event carries the app's own version (see
    `dualsync.producers.domains`); an event without one raises `VersionDomainError`.
    """

    def __init__(
        self,
        redis: AnyRedis,
        *,
        source: str,
        prefix: str = "dualsync",
        shards: int = 4,
        max_payload_bytes: int = 1024 * 1024,
        sign_key: bytes | None = None,
        spool_dir: Path | None = None,
        retry_interval: float = 1.0,
        app_versions: Iterable[str] = (),
        close_timeout: float = 5.0,
    ) -> None:
        self._redis = redis
        clock = HybridClock(spool_dir / CLOCK_FILE if spool_dir is not None else None)
        domains = VersionDomains(app_versions)
        self._builder = EventBuilder(
            source, prefix, shards, max_payload_bytes, sign_key, clock, domains
        )
        self._spool = Spool(spool_dir) if spool_dir is not None else None
        self._retry = retry_interval
        self._close_timeout = close_timeout
        # Serialises spool appends against the drain so order is kept.
        self._lock = asyncio.Lock()
        self._drainer: asyncio.Task[None] | None = None
        self._closing = False
        # Per spool file: entry ends already in Redis although their chunk failed part-way,
        # so a retry does not send them again.
        self._delivered: dict[Path, set[int]] = {}
        self._spool_pending = self._spool is not None and self._spool.adopt_orphans() > 0
        if self._spool_pending:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # no loop yet: `start()`, `async with` or the first publish drains them
            else:
                self._start_drainer()

    @classmethod
    def from_settings(cls, settings: Settings, redis: AnyRedis, **kw: Any) -> Self:
        """A publisher configured from `Settings` (source, prefix, shards, limits, signing)."""
        key = settings.signing_keys.get(settings.source)
        return cls(
            redis,
            source=settings.source,
            prefix=settings.prefix,
            shards=settings.shards,
            max_payload_bytes=settings.max_payload_bytes,
            sign_key=key.get_secret_value().encode() if key else None,
            spool_dir=settings.spool_dir,
            **kw,
        )

    @property
    def builder(self) -> EventBuilder:
        """The event builder (routing, versions, signing) this publisher uses."""
        return self._builder

    async def start(self) -> None:
        """Start draining spool files adopted from a dead process (idempotent)."""
        if self._spool_pending:
            self._start_drainer()

    async def publish(
        self,
        entity: str,
        key: str,
        op: Op | str = Op.UPSERT,
        payload: dict[str, Any] | None = None,
        version: int | None = None,
        trace_id: str | None = None,
    ) -> Published:
        """Publish one change event; never raises because Redis is down."""
        spec = EventSpec(entity, key, op, payload, version, trace_id)
        return (await self.publish_many([spec]))[0]

    async def publish_many(self, specs: Iterable[EventSpec]) -> list[Published]:
        """Publish many events in one pipelined round trip (order kept per key)."""
        built = self._builder.build_many(specs)
        if not built:
            return []
        if not self._spool_pending:
            try:
                ids = await self._xadd(built)
            except UNREACHABLE as exc:
                if self._spool is None:
                    raise
                log.warning("redis_unreachable_spooling", error=str(exc), events=len(built))
            else:
                return [
                    Published(b.event_id, b.stream, b.version, i, ref=b.ref)
                    for b, i in zip(built, ids, strict=True)
                ]
        await self._to_spool(built)
        return [
            Published(b.event_id, b.stream, b.version, None, spooled=True, ref=b.ref) for b in built
        ]

    async def _xadd(self, built: list[BuiltEvent]) -> list[str]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for b in built:
                pipe.xadd(b.stream, b.fields)  # type: ignore[arg-type]  # redis stubs want bytes-ish keys
            ids = await pipe.execute(raise_on_error=False)
        for i in ids:
            if isinstance(i, ResponseError):
                raise i  # not annotated by redis-py, so it does not quote the payload
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def _to_spool(self, built: list[BuiltEvent]) -> None:
        assert self._spool is not None  # noqa: S101 - only called with a spool
        spool = self._spool
        async with self._lock:
            await asyncio.to_thread(spool.append, [(b.stream, b.fields) for b in built])
            self._spool_pending = True
        self._start_drainer()

    def _start_drainer(self) -> None:
        if not self._closing and (self._drainer is None or self._drainer.done()):
            self._drainer = asyncio.create_task(self._drain_loop(), name="dualsync-spool-drain")

    async def _drain_loop(self) -> None:
        failures, waiting = 0, False
        while self._spool_pending and not self._closing:
            try:
                await self.flush()
            except UNREACHABLE as exc:
                if not waiting:  # once per outage, not every retry_interval
                    log.warning(
                        "spool_drain_waiting", error_type=type(exc).__name__, error=_describe(exc)
                    )
                    waiting = True
                await asyncio.sleep(self._retry)
            except Exception as exc:  # the drain must never die: it logs and retries
                failures += 1
                delay = min(self._retry * 2 ** min(failures - 1, 30), max(MAX_BACKOFF, self._retry))
                log.error(  # noqa: TRY400 - a Redis error's message says it all, every retry
                    "spool_drain_failed",
                    error_type=type(exc).__name__,
                    error=_describe(exc),
                    attempt=failures,
                    retry_in_s=round(delay, 3),
                    exc_info=not isinstance(exc, RedisError),  # a bug: keep its traceback
                )
                await asyncio.sleep(delay)
            else:
                failures, waiting = 0, False

    async def flush(self) -> int:
        """Drain the spool to Redis now; return how many entries were sent.

        Raises an `UNREACHABLE` error if Redis is still down, or the first `ResponseError`
        of a chunk (entries stay spooled from the first one not yet in Redis).
        """
        if self._spool is None:
            return 0
        spool, sent = self._spool, 0
        async with self._lock:
            while True:
                nxt = await asyncio.to_thread(spool.next_chunk, DRAIN_CHUNK)
                if nxt is None:
                    self._spool_pending = False
                    break
                f, chunk = nxt
                sent += await self._send_chunk(spool, f, chunk)
        if sent:
            log.info("spool_drained", events=sent)
        return sent

    async def _send_chunk(self, spool: Spool, f: SpoolFile, chunk: list[SpoolEntry]) -> int:
        done = self._delivered.setdefault(f.path, set())
        todo = [e for e in chunk if e.end not in done]
        async with self._redis.pipeline(transaction=False) as pipe:
            for e in todo:
                pipe.xadd(e.stream, e.fields)  # type: ignore[arg-type]  # redis stub: dict is invariant
            results = await pipe.execute(raise_on_error=False)
        error: Exception | None = None
        for e, r in zip(todo, results, strict=True):
            if isinstance(r, Exception):
                error = error or r
            else:
                done.add(e.end)
        committed = 0
        for e in chunk:  # the longest prefix now in Redis
            if e.end not in done:
                break
            committed += 1
        if committed:
            await asyncio.to_thread(spool.commit, f, chunk[committed - 1].end)
            done.difference_update(e.end for e in chunk[:committed])
        if not done:
            del self._delivered[f.path]
        if error is not None:
            raise error
        return committed

    @property
    def spooling(self) -> bool:
        """True while events wait in the local spool."""
        return self._spool_pending

    async def aclose(self) -> None:
        """Stop the drainer, try a last drain for at most `close_timeout` s, release the spool.

        Undrained entries stay in the spool for the next publisher on the directory.
        """
        self._closing = True
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        if self._spool_pending:
            try:
                async with asyncio.timeout(self._close_timeout):
                    await self.flush()
            except Exception as exc:  # noqa: BLE001 - closing never fails because Redis did
                log.warning(
                    "spool_left_for_next_publisher",
                    error_type=type(exc).__name__,
                    error=_describe(exc),
                )
        if self._spool is not None:
            # Waits (on the spool's mutex) for a commit still running in a cancelled drain's
            # worker thread: milliseconds at most, so not worth a thread of its own.
            self._spool.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
