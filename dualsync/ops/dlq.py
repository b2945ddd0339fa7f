"""Dead-letter operations: list, show, replay (through the normal path) and purge.

Replay re-adds the original, unredacted fields (kept in `<prefix>:dlq:raw`) to the
event's shard stream, so it goes through decode, mapping and the version gate like any
event; its DLQ entry is removed once the re-add succeeded. Replay and purge also remove
the letter's entry in `<prefix>:dlq:index` (source entry -> DLQ id, which the worker
checks so that a poison redelivered after a crash is not dead-lettered twice).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, cast

import orjson

from dualsync.errors import PermanentError
from dualsync.redisconn import AnyRedis
from dualsync.schema.streams import (
    dlq_index_field,
    dlq_index_key,
    dlq_key,
    dlq_raw_key,
    shard_for,
    stream_key,
)

_PAGE = 1000

__all__ = ["DeadLetterView", "NoSuchDeadLetterError", "list_letters", "purge", "replay"]


class NoSuchDeadLetterError(PermanentError):
    """The DLQ has no entry with that id (already replayed or purged?)."""

    reason = "no_such_dead_letter"


@dataclass(frozen=True, slots=True)
class DeadLetterView:
    """One DLQ entry as operators see it (secrets already redacted)."""

    id: str
    reason: str
    error: str
    entity: str
    key: str
    event_id: str
    deliveries: int
    failed_at: str
    stream: str
    entry_id: str
    fields: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {k: getattr(self, k) for k in self.__slots__}


def _s(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _view(entry_id: Any, raw: dict[bytes, bytes]) -> DeadLetterView:
    f = {_s(k): _s(v) for k, v in raw.items()}
    return DeadLetterView(
        id=_s(entry_id),
        reason=f.get("reason", ""),
        error=f.get("error", ""),
        entity=f.get("entity", ""),
        key=f.get("key", ""),
        event_id=f.get("event_id", ""),
        deliveries=int(f.get("deliveries", "0") or 0),
        failed_at=f.get("failed_at", ""),
        stream=f.get("stream", ""),
        entry_id=f.get("entry_id", ""),
        fields=orjson.loads(f.get("fields", "{}")),
    )


async def list_letters(
    client: AnyRedis,
    prefix: str,
    *,
    entity: str | None = None,
    reason: str | None = None,
    ids: list[str] | None = None,
    limit: int | None = None,
) -> list[DeadLetterView]:
    """DLQ entries, oldest first, filtered by entity/reason/ids."""
    out: list[DeadLetterView] = []
    if ids:
        for i in ids:
            rows = cast("list[Any]", await client.xrange(dlq_key(prefix), min=i, max=i))
            if not rows:
                raise NoSuchDeadLetterError(f"no dead letter {i!r} in {dlq_key(prefix)}")
            out.append(_view(*rows[0]))
        return out
    start = "-"
    while True:
        rows = cast("list[Any]", await client.xrange(dlq_key(prefix), min=start, count=_PAGE))
        for entry_id, raw in rows:
            v = _view(entry_id, raw)
            if (entity is None or v.entity == entity) and (reason is None or v.reason == reason):
                out.append(v)
                if limit is not None and len(out) >= limit:
                    return out
        if len(rows) < _PAGE:
            return out
        start = "(" + _s(rows[-1][0])


async def replay(
    client: AnyRedis, prefix: str, shards: int, letters: list[DeadLetterView], *, dry_run: bool
) -> list[tuple[DeadLetterView, str]]:
    """Re-add each letter's original event to its shard stream; return (letter, target)."""
    raw_key = dlq_raw_key(prefix)
    done: list[tuple[DeadLetterView, str]] = []
    for d in letters:
        raw = await cast("Awaitable[bytes | None]", client.hget(raw_key, d.id))
        if raw is None:
            raise NoSuchDeadLetterError(
                f"dead letter {d.id} has no stored original (purged?): it cannot be replayed"
            )
        fields = orjson.loads(raw)
        entity, key = fields.get("entity", ""), fields.get("key", "")
        target = stream_key(prefix, shard_for(entity, key, shards)) if entity and key else d.stream
        if not dry_run:
            async with client.pipeline(transaction=False) as pipe:
                pipe.xadd(target, fields)
                pipe.xdel(dlq_key(prefix), d.id)
                pipe.hdel(raw_key, d.id)
                if d.stream and d.entry_id:
                    pipe.hdel(dlq_index_key(prefix), dlq_index_field(d.stream, d.entry_id))
                await pipe.execute()
        done.append((d, target))
    return done


async def purge(client: AnyRedis, prefix: str, older_than: dt.timedelta) -> int:
    """Delete DLQ entries older than `older_than` (by their stream id time, to the
    millisecond: `--older-than 0` purges every letter written so far, including one
    written in this very millisecond)."""
    cutoff_ms = int((dt.datetime.now(dt.UTC) - older_than).timestamp() * 1000)
    rows = cast("list[Any]", await client.xrange(dlq_key(prefix), max=str(cutoff_ms)))
    views = [_view(*r) for r in rows]
    if not views:
        return 0
    async with client.pipeline(transaction=False) as pipe:
        for chunk_start in range(0, len(views), 500):
            chunk = views[chunk_start : chunk_start + 500]
            pipe.xdel(dlq_key(prefix), *(v.id for v in chunk))
            pipe.hdel(dlq_raw_key(prefix), *(v.id for v in chunk))
            index = [
                dlq_index_field(v.stream, v.entry_id) for v in chunk if v.stream and v.entry_id
            ]
            if index:
                pipe.hdel(dlq_index_key(prefix), *index)
        await pipe.execute()
    return len(views)
