"""The dead-letter write on a Redis Cluster: separate steps, made idempotent by the index.

On a single Redis the DLQ entry, its raw original and its index entry are written by one
Lua script (`deadletter._WRITE_LETTER`). On a cluster the three keys (`<prefix>:dlq`,
`:dlq:raw`, `:dlq:index`) hash to different slots, usually on different nodes, and no
script or MULTI can span them; the key names are the contract every tool reads, so they
are not re-tagged into one slot. The steps run one after another instead, in an order
that makes every crash point recoverable when the poison is redelivered (it is still
pending, since the source XACK comes only after all of them):

1. `HSET index <stream>/<id> pending:<last DLQ id>` - a marker: "a letter for this entry
   may be written after this DLQ id".
2. `XADD dlq ...` - the letter itself (its fields name the source stream and entry id).
3. `HSET raw <dlq id> <original>`, then 4. `HSET index <stream>/<id> <dlq id>`.

A redelivered poison first reads its index field. A DLQ id whose entry exists: the letter
is there (its raw original is re-put with HSETNX in case the crash came before step 3);
nothing is written twice. A `pending:` marker: the crash came between 1 and 4; the DLQ
entries after the marker's id are searched for one naming this source entry - found, it
is completed (steps 3 and 4), not duplicated; not found, the letter was never written and
is written now. No field: nothing was written. So a crash anywhere gives one letter with
its original, as on a single Redis. What the cluster path does not give is isolation: two
consumers dead-lettering the same entry at the same moment (a peer reclaimed it while the
first was still writing, which needs a stall longer than `claim_idle_ms`) can both write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from dualsync.redisconn import AnyRedis
from dualsync.schema.streams import dlq_index_key, dlq_key, dlq_raw_key

__all__ = ["PENDING", "write_letter_cluster"]

#: prefix of an index value written before the DLQ entry exists (step 1)
PENDING: Final = "pending:"
_PAGE: Final = 200


def _s(v: Any) -> str:
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


async def _exists(client: AnyRedis, dlq: str, entry_id: str) -> bool:
    return bool(await client.xrange(dlq, min=entry_id, max=entry_id))


async def _find_after(
    client: AnyRedis, dlq: str, since: str, stream: str, src_id: str
) -> str | None:
    """The DLQ id of the letter for (stream, src_id) written after `since`, if any."""
    start = f"({since}" if since != "0-0" else "-"
    while True:
        rows = cast("list[Any]", await client.xrange(dlq, min=start, count=_PAGE))
        for entry_id, fields in rows:
            f = {_s(k): _s(v) for k, v in fields.items()}
            if f.get("stream") == stream and f.get("entry_id") == src_id:
                return _s(entry_id)
        if len(rows) < _PAGE:
            return None
        start = "(" + _s(rows[-1][0])


async def _last_id(client: AnyRedis, dlq: str) -> str:
    rows = cast("list[Any]", await client.xrevrange(dlq, count=1))
    return _s(rows[0][0]) if rows else "0-0"


async def write_letter_cluster(
    client: AnyRedis,
    prefix: str,
    index_field: str,
    stream: str,
    src_id: str,
    raw: bytes,
    entry: Mapping[str, str],
) -> str:
    """Write one letter (see the module docstring); return its DLQ id (existing or new)."""
    dlq, raw_key, index = dlq_key(prefix), dlq_raw_key(prefix), dlq_index_key(prefix)
    known_raw = await client.hget(index, index_field)  # type: ignore[misc]  # redis stubs: Awaitable|Any
    known = _s(known_raw) if known_raw is not None else None
    found: str | None = None
    if known is not None and not known.startswith(PENDING):
        found = known if await _exists(client, dlq, known) else None
    elif known is not None:
        found = await _find_after(client, dlq, known.removeprefix(PENDING), stream, src_id)
    if found is not None:
        await client.hsetnx(raw_key, found, raw)  # type: ignore[arg-type, misc]  # redis stubs: str values, Awaitable|Any
        if found != known:
            await client.hset(index, index_field, found)  # type: ignore[misc]  # redis stubs: Awaitable|Any
        return found
    # Nothing written yet (or an earlier marker's write never happened): a fresh marker,
    # so a crash after the XADD below finds the letter after the current last id.
    await client.hset(index, index_field, PENDING + await _last_id(client, dlq))  # type: ignore[misc]  # redis stubs: Awaitable|Any
    new_id = _s(await client.xadd(dlq, dict(entry)))  # type: ignore[arg-type]  # redis stubs want bytes-ish keys
    await client.hset(raw_key, new_id, raw)  # type: ignore[arg-type, misc]  # redis stubs: str values, Awaitable|Any
    await client.hset(index, index_field, new_id)  # type: ignore[misc]  # redis stubs: Awaitable|Any
    return new_id
