"""`SyncPublisher`: the same contract as `Publisher` for synchronous legacy code.

A thin wrapper over the same `EventBuilder` and `Spool` (no generated sync copy of the
async code): one pipelined XADD per call; on an unreachable Redis the events are spooled
and a daemon thread drains them once Redis answers.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis

from dualsync.logging import get_logger
from dualsync.producers.builder import BuiltEvent, EventBuilder, EventSpec, Published
from dualsync.producers.publisher import DRAIN_CHUNK, UNREACHABLE
from dualsync.producers.spool import Spool
from dualsync.schema.envelope import Op
from dualsync.settings import Settings

__all__ = ["SyncPublisher"]

log = get_logger(__name__)


class SyncPublisher:
    """Blocking publisher; thread-safe. Use as a context manager or call `close()`."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        source: str,
        prefix: str = "dualsync",
        shards: int = 4,
        max_payload_bytes: int = 1024 * 1024,
        sign_key: bytes | None = None,
        spool_dir: Path | None = None,
        retry_interval: float = 1.0,
    ) -> None:
        self._redis = client
        self._builder = EventBuilder(source, prefix, shards, max_payload_bytes, sign_key)
        self._spool = Spool(spool_dir) if spool_dir is not None else None
        self._retry = retry_interval
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._drainer: threading.Thread | None = None
        self._spool_pending = bool(self._spool is not None and self._spool.adopt_orphans())

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis, **kw: Any) -> Self:
        """A publisher configured from `Settings`."""
        key = settings.signing_keys.get(settings.source)
        return cls(
            client,
            source=settings.source,
            prefix=settings.prefix,
            shards=settings.shards,
            max_payload_bytes=settings.max_payload_bytes,
            sign_key=key.get_secret_value().encode() if key else None,
            spool_dir=settings.spool_dir,
            **kw,
        )

    def publish(
        self,
        entity: str,
        key: str,
        op: Op | str = Op.UPSERT,
        payload: dict[str, Any] | None = None,
        version: int | None = None,
        trace_id: str | None = None,
    ) -> Published:
        """Publish one change event; never raises because Redis is down."""
        return self.publish_many([EventSpec(entity, key, op, payload, version, trace_id)])[0]

    def publish_many(self, specs: Iterable[EventSpec]) -> list[Published]:
        """Publish many events in one pipelined round trip."""
        built = self._builder.build_many(specs)
        if not built:
            return []
        with self._lock:
            if not self._spool_pending:
                try:
                    ids = self._xadd(built)
                except UNREACHABLE as exc:
                    if self._spool is None:
                        raise
                    log.warning("redis_unreachable_spooling", error=str(exc), events=len(built))
                else:
                    return [
                        Published(b.event_id, b.stream, b.version, i, ref=b.ref)
                        for b, i in zip(built, ids, strict=True)
                    ]
            assert self._spool is not None  # noqa: S101 - spool_pending implies a spool
            self._spool.append([(b.stream, b.fields) for b in built])
            self._spool_pending = True
            self._start_drainer()
        return [
            Published(b.event_id, b.stream, b.version, None, spooled=True, ref=b.ref) for b in built
        ]

    def _xadd(self, built: list[BuiltEvent]) -> list[str]:
        pipe = self._redis.pipeline(transaction=False)
        for b in built:
            pipe.xadd(b.stream, b.fields)  # type: ignore[arg-type]  # redis stubs want bytes-ish keys
        ids = pipe.execute()
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    def _start_drainer(self) -> None:
        if self._drainer is None or not self._drainer.is_alive():
            self._drainer = threading.Thread(
                target=self._drain_loop, name="dualsync-spool-drain", daemon=True
            )
            self._drainer.start()

    def _drain_loop(self) -> None:
        while self._spool_pending and not self._stop.is_set():
            try:
                self.flush()
            except UNREACHABLE:
                self._stop.wait(self._retry)

    def flush(self) -> int:
        """Drain the spool now; raises an `UNREACHABLE` error if Redis is still down."""
        if self._spool is None:
            return 0
        sent = 0
        with self._lock:
            while (nxt := self._spool.next_chunk(DRAIN_CHUNK)) is not None:
                f, chunk = nxt
                pipe = self._redis.pipeline(transaction=False)
                for e in chunk:
                    pipe.xadd(e.stream, e.fields)  # type: ignore[arg-type]  # redis stub: dict is invariant
                pipe.execute()
                self._spool.commit(f, chunk[-1].end)
                sent += len(chunk)
            self._spool_pending = False
        if sent:
            log.info("spool_drained", events=sent)
        return sent

    @property
    def spooling(self) -> bool:
        """True while events wait in the local spool."""
        return self._spool_pending

    def close(self) -> None:
        """Try a last drain, stop the drainer thread, release the spool."""
        self._stop.set()
        if self._drainer is not None:
            self._drainer.join(timeout=5)
        if self._spool_pending:
            with contextlib.suppress(*UNREACHABLE):
                self.flush()
        if self._spool is not None:
            self._spool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
