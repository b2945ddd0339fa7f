"""Where snapshot records go: the stream (default) or straight into the apply path.

`Sink` is the seam: `StreamSink` publishes through the SDK with back-pressure on the
consumer group's lag; `dualsync.ops.backfill_direct.DirectSink` feeds the same
`consumers/` batch code the worker uses, without Redis. Both report documents the
mapping refuses, by key and reason, and neither stops for them.

Both are also a `StagedSink`: `prepare` does a chunk's CPU work (mapping, validation) and
touches no connection, so the run calls it in a thread for the next chunk while `commit`
of this one waits on Postgres or Redis (see `pipeline.py`). `send` is the two in a row.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import redis.asyncio as aredis
from redis.exceptions import ResponseError

from dualsync.errors import PermanentError
from dualsync.logging import get_logger
from dualsync.producers.builder import EventSpec
from dualsync.producers.publisher import Publisher
from dualsync.producers.vector_payload import BinaryVectors
from dualsync.redisconn import AnyRedis
from dualsync.schema.errors import EnvelopeError
from dualsync.schema.legacy import LegacyRecord
from dualsync.schema.mapping import MappingSet
from dualsync.schema.streams import stream_keys

__all__ = ["BadDoc", "Prepared", "SendResult", "Sink", "StagedSink", "StreamSink", "group_lag"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class BadDoc:
    """A legacy document the mapping (or the envelope) refuses."""

    entity: str
    key: str
    reason: str
    error: str


@dataclass(slots=True)
class SendResult:
    """What one chunk produced."""

    sent: int = 0
    bad: list[BadDoc] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A chunk made ready to commit: the sink's own form of it, and what it refused."""

    entity: str
    bad: list[BadDoc]
    #: what `commit` sends (mapped changes, event specs); only the sink that made it reads it
    payload: Any


class Sink(Protocol):
    """Takes snapshot records of one entity, in chunks, each with its version."""

    async def send(
        self, entity: str, records: list[LegacyRecord], versions: list[int]
    ) -> SendResult:
        """Deliver one chunk; return only when it is durable (published or committed)."""
        ...

    async def wait_applied(self) -> None:
        """Return once everything sent so far is applied (before children's parents go)."""
        ...


@runtime_checkable
class StagedSink(Sink, Protocol):
    """A sink whose chunks are prepared (CPU only, thread-safe) apart from being committed."""

    def prepare(self, entity: str, records: list[LegacyRecord], versions: list[int]) -> Prepared:
        """Map or validate one chunk; no I/O, safe to call from a thread."""
        ...

    async def commit(self, prepared: Prepared) -> SendResult:
        """Deliver a prepared chunk; return only when it is durable."""
        ...


def check(ms: MappingSet, entity: str, rec: LegacyRecord) -> BadDoc | None:
    """The mapping's verdict on one document (what the worker would dead-letter)."""
    try:
        ms.entity(entity).to_rows(rec.key, rec.doc)
    except PermanentError as exc:
        return BadDoc(entity, rec.key, exc.reason, str(exc))
    return None


async def group_lag(
    client: AnyRedis, prefix: str, shards: int, group: str, *, cap: int = 1_000_000
) -> int:
    """Entries of the streams `group` has not acknowledged: pending plus not yet delivered
    (every entry when there is no group yet). Counts above `cap` per stream are cut there.

    Redis 7 reports the undelivered count as `lag`; 6.2 (the embedded server) does not, and
    XLEN also counts acknowledged entries until they are trimmed, so there the entries after
    the group's last-delivered id are counted with an exclusive XRANGE.
    """
    total = 0
    for stream in stream_keys(prefix, shards):
        try:
            groups: list[dict[str, Any]] = await client.xinfo_groups(stream)
        except ResponseError:  # no such stream yet
            continue
        info = next((g for g in groups if _s(g.get("name")) == group), None)
        if info is None:
            total += min(int(await client.xlen(stream)), cap)
            continue
        lag = info.get("lag")
        if lag is None:
            last = _s(info.get("last-delivered-id", "0-0"))
            lag = len(await client.xrange(stream, min=f"({last}", max="+", count=cap))
        total += int(info.get("pending", 0)) + int(lag)
    return total


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class StreamSink:
    """Publish snapshot records as upsert events; wait while the group lags too far."""

    def __init__(
        self,
        publisher: Publisher,
        client: aredis.Redis,
        ms: MappingSet,
        *,
        prefix: str,
        shards: int,
        group: str = "apply",
        max_lag: int = 100_000,
        validate: bool = True,
        parent_wait_s: float = 30.0,
    ) -> None:
        self._pub = publisher
        self._redis = client
        self._ms = ms
        self._prefix, self._shards, self._group = prefix, shards, group
        self.max_lag = max_lag
        self._validate = validate
        self._parent_wait_s = parent_wait_s
        self._vectors = BinaryVectors(ms)
        self.waited_s = 0.0

    async def wait_applied(self) -> None:
        """Wait until the group has applied everything published (the parents of the next
        entity), so its children do not spend their retries on missing foreign keys.
        Without a worker making progress for `parent_wait_s`, go on: the worker's FK
        retries cover the rest."""
        last, since = None, asyncio.get_running_loop().time()
        while (lag := await group_lag(self._redis, self._prefix, self._shards, self._group)) > 0:
            now = asyncio.get_running_loop().time()
            if lag != last:
                last, since = lag, now
            elif now - since > self._parent_wait_s:
                hint = "is a worker running? children may wait for their parents"
                log.warning("backfill_parents_not_applied", lag=lag, hint=hint)
                return
            await asyncio.sleep(0.1)

    async def _backpressure(self, adding: int) -> None:
        delay = 0.05
        while await group_lag(self._redis, self._prefix, self._shards, self._group) + adding > (
            self.max_lag
        ):
            await asyncio.sleep(delay)
            self.waited_s += delay
            delay = min(delay * 2, 1.0)

    def prepare(self, entity: str, records: list[LegacyRecord], versions: list[int]) -> Prepared:
        """Validate the chunk against the mapping and build its event specs (embeddings
        as binary vectors: vector_payload.py)."""
        bad = []
        if self._validate:
            bad = [b for r in records if (b := check(self._ms, entity, r)) is not None]
        payload = self._vectors.payload
        specs = [
            EventSpec(entity, r.key, "upsert", payload(entity, r.doc), v)
            for r, v in zip(records, versions, strict=True)
        ]
        return Prepared(entity, bad, specs)

    async def send(
        self, entity: str, records: list[LegacyRecord], versions: list[int]
    ) -> SendResult:
        """Publish the chunk (bad documents too: the worker dead-letters them as usual)."""
        return await self.commit(self.prepare(entity, records, versions))

    async def commit(self, prepared: Prepared) -> SendResult:
        """Publish a prepared chunk once the group's lag leaves room for it."""
        specs: list[EventSpec] = prepared.payload
        entity = prepared.entity
        out = SendResult(bad=list(prepared.bad))
        await self._backpressure(len(specs))
        try:
            await self._pub.publish_many(specs)
            out.sent = len(specs)
        except EnvelopeError:
            # One spec no worker could accept (a key over 512 chars, a NUL): send the rest
            # one by one and report that one, instead of losing the chunk.
            for spec in specs:
                try:
                    await self._pub.publish_many([spec])
                    out.sent += 1
                except EnvelopeError as exc:
                    out.bad.append(BadDoc(entity, spec.key[:80], exc.reason, str(exc)))
        return out
