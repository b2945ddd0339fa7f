"""`dualsync backfill --direct`: snapshot records into the apply path without Redis.

Not a second apply implementation: each chunk becomes the same `Change`s the worker
decodes and goes through the same `consumers.apply_batch` (COPY staging, version gate,
parents first) in one transaction. What the worker does with failures is mirrored here:
an outage is retried with backoff, a data error bisects the chunk until the refused
documents are alone, and those are reported by key and reason while the rest commit.

Mapping is `prepare` (CPU only, run in a thread one chunk ahead) and the transaction is
`commit`, so the next chunk is read and mapped while Postgres applies this one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from psycopg_pool import AsyncConnectionPool

from dualsync.consumers.apply import apply_batch
from dualsync.consumers.change import Change, collapse
from dualsync.errors import PermanentError, ServiceUnavailableError
from dualsync.logging import get_logger
from dualsync.producers.backfill.sink import BadDoc, Prepared, SendResult
from dualsync.producers.clock import uuid7
from dualsync.schema.legacy import LegacyRecord
from dualsync.schema.mapping import MappingSet
from dualsync.worker.deadletter import error_text
from dualsync.worker.retry import Failure, backoff, classify, reason_of

__all__ = ["DirectSink"]

log = get_logger(__name__)


class DirectSink:
    """Apply snapshot chunks straight to Postgres through the batch apply path."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], ms: MappingSet, *, outage_s: float = 60.0
    ) -> None:
        self._pool = pool
        self._ms = ms
        self._outage_s = outage_s
        self.applied = 0
        self.stale = 0

    def prepare(self, entity: str, records: list[LegacyRecord], versions: list[int]) -> Prepared:
        """Map one chunk into collapsed `Change`s; documents the mapping refuses are `bad`."""
        to_rows = self._ms.entity(entity).to_rows
        changes = []
        bad = []
        for rec, version in zip(records, versions, strict=True):
            try:
                rows = to_rows(rec.key, rec.doc)
            except PermanentError as exc:
                bad.append(BadDoc(entity, rec.key, exc.reason, str(exc)))
                continue
            changes.append(
                Change(entity, rec.key, version, deleted=False, event_id=uuid7(), rows=rows)
            )
        return Prepared(entity, bad, collapse(changes))

    async def wait_applied(self) -> None:
        """Committed chunks are applied already."""

    async def send(
        self, entity: str, records: list[LegacyRecord], versions: list[int]
    ) -> SendResult:
        """Map and apply one chunk; return once it is committed."""
        return await self.commit(self.prepare(entity, records, versions))

    async def commit(self, prepared: Prepared) -> SendResult:
        """Apply a prepared chunk in one transaction; return once it is committed."""
        out = SendResult(bad=list(prepared.bad))
        await self._apply(prepared.payload, out)
        return out

    async def _apply(self, changes: list[Change], out: SendResult) -> None:
        if not changes:
            return
        since: float | None = None
        attempt = 0
        while True:
            try:
                async with self._pool.connection() as conn:
                    result = await apply_batch(conn, self._ms, changes)
            except Exception as exc:
                kind = classify(exc)
                if kind is Failure.SYSTEMIC and not isinstance(exc, PermanentError):
                    now = time.monotonic()
                    since = since or now
                    if now - since > self._outage_s:
                        raise ServiceUnavailableError(
                            f"PostgreSQL failing for {now - since:.0f} s ({error_text(exc)}); "
                            "the checkpoint is saved: fix it, then run again with --resume"
                        ) from exc
                    attempt += 1
                    log.warning("backfill_apply_will_retry", error=error_text(exc))
                    await asyncio.sleep(backoff(attempt, 0.2, 5.0))
                    continue
                await self._bisect(changes, exc, out)
                return
            out.sent += len(changes)
            self.applied += result.applied
            self.stale += result.stale
            return

    async def _bisect(self, changes: list[Change], exc: Exception, out: SendResult) -> None:
        if len(changes) == 1:
            c = changes[0]
            out.bad.append(BadDoc(c.entity, c.key, reason_of(exc), error_text(exc)))
            return
        mid = len(changes) // 2
        await self._apply(changes[:mid], out)
        await self._apply(changes[mid:], out)
