"""`Publisher`: the async SDK a legacy Python application calls after each write.

Happy path: one pipelined XADD per call (`publish_many` sends any number in one round
trip). When Redis is unreachable the events go to the local fsynced spool and the call
still succeeds; while anything is spooled, new events are spooled behind it so per-key
order holds; a background task drains the spool, in order, once Redis answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis.asyncio as aredis

from dualsync.logging import get_logger
from dualsync.producers.builder import BuiltEvent, EventBuilder, EventSpec, Published
from dualsync.producers.spool import Spool
from dualsync.schema.envelope import Op
from dualsync.schema.streams import UNREACHABLE
from dualsync.settings import Settings

__all__ = ["UNREACHABLE", "Publisher"]

log = get_logger(__name__)

DRAIN_CHUNK = 500


class Publisher:
    """Async publisher. Use as `async with Publisher(...) as pub:` or call `aclose()`."""

    def __init__(
        self,
        redis: aredis.Redis,
        *,
        source: str,
        prefix: str = "dualsync",
        shards: int = 4,
        max_payload_bytes: int = 1024 * 1024,
        sign_key: bytes | None = None,
        spool_dir: Path | None = None,
        retry_interval: float = 1.0,
    ) -> None:
        self._redis = redis
        self._builder = EventBuilder(source, prefix, shards, max_payload_bytes, sign_key)
        self._spool = Spool(spool_dir) if spool_dir is not None else None
        self._retry = retry_interval
        # Serialises spool appends against the drain so order is kept.
        self._lock = asyncio.Lock()
        self._drainer: asyncio.Task[None] | None = None
        if self._spool is not None and self._spool.adopt_orphans():
            self._spool_pending = True
        else:
            self._spool_pending = False

    @classmethod
    def from_settings(cls, settings: Settings, redis: aredis.Redis, **kw: Any) -> Self:
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
            ids = await pipe.execute()
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def _to_spool(self, built: list[BuiltEvent]) -> None:
        assert self._spool is not None  # noqa: S101 - only called with a spool
        spool = self._spool
        async with self._lock:
            await asyncio.to_thread(spool.append, [(b.stream, b.fields) for b in built])
            self._spool_pending = True
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain_loop(), name="dualsync-spool-drain")

    async def _drain_loop(self) -> None:
        while self._spool_pending:
            try:
                await self.flush()
            except UNREACHABLE:
                await asyncio.sleep(self._retry)

    async def flush(self) -> int:
        """Drain the spool to Redis now; return how many entries were sent.

        Raises an `UNREACHABLE` error if Redis is still down (entries stay spooled).
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
                async with self._redis.pipeline(transaction=False) as pipe:
                    for e in chunk:
                        pipe.xadd(e.stream, e.fields)  # type: ignore[arg-type]  # redis stub: dict is invariant
                    await pipe.execute()
                await asyncio.to_thread(spool.commit, f, chunk[-1].end)
                sent += len(chunk)
        if sent:
            log.info("spool_drained", events=sent)
        return sent

    @property
    def spooling(self) -> bool:
        """True while events wait in the local spool."""
        return self._spool_pending

    async def aclose(self) -> None:
        """Try a last drain, stop the drainer, release the spool (undrained entries stay)."""
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        if self._spool_pending:
            with contextlib.suppress(*UNREACHABLE):
                await self.flush()
        if self._spool is not None:
            self._spool.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
