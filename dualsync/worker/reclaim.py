"""Pending-entry recovery: XAUTOCLAIM from dead consumers, XCLAIM for our own retries.

Two kinds of retry, counted differently. A data failure (the event's own data failed)
re-claims with a plain XCLAIM, which increments the group's delivery counter: that
counter is what `max_deliveries` / `transient_max_deliveries` are compared with. An
outage retry (the database was unreachable or busy, nobody's data failed) re-claims
with `XCLAIM ... JUSTID`, which resets the idle time (peers do not reclaim an entry we
are still retrying) without incrementing the counter, so an outage of any length does
not use up the delivery budget; the fields are already in memory. The counter stays
Redis's own (XPENDING shows it; a reclaim by a peer after a crash counts, as it should),
with no second counter to keep in step.

XAUTOCLAIM (Redis >= 6.2) returns `[cursor, entries]` on 6.2 and
`[cursor, entries, deleted_ids]` on 7.x; both are handled. Entries trimmed while
pending come back with no fields (6.2) or in `deleted_ids` (7.x, already removed from
the PEL); the 6.2 form is acked here so it stops being pending.

Every command and pipeline here names one stream at a time, so all of it is cluster-safe.
"""

from __future__ import annotations

from typing import Any, cast

from dualsync.redisconn import AnyRedis
from dualsync.worker.entry import Entry, parse_entries

__all__ = [
    "claim_for_retry",
    "delivery_counts",
    "reclaim_idle",
    "split_autoclaim",
    "touch_for_retry",
]


def split_autoclaim(resp: Any) -> tuple[str, list[Any], list[str]]:
    """(next cursor, claimed entries, deleted ids) from either XAUTOCLAIM reply shape."""
    cursor_raw, raw = resp[0], resp[1]
    deleted = [_s(i) for i in resp[2]] if len(resp) > 2 else []  # noqa: PLR2004 - the 7.x shape
    return _s(cursor_raw), list(raw), deleted


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def delivery_counts(
    client: AnyRedis, stream: str, group: str, ids: list[str]
) -> dict[str, int]:
    """Times delivered, per entry id: one `XPENDING stream group id id 1` per id, pipelined.

    Exact whatever else is pending: a single XPENDING over the ids' range with a COUNT
    window also returns other consumers' entries in between, which can push ours out of
    the window (their count then reads as 1 and a poison is dead-lettered late)."""
    if not ids:
        return {}
    async with client.pipeline(transaction=False) as pipe:
        for i in ids:
            pipe.xpending_range(stream, group, min=i, max=i, count=1)
        replies = await pipe.execute()
    out = {}
    for i, rows in zip(ids, replies, strict=True):
        for r in cast("list[dict[str, Any]]", rows):
            if _s(r["message_id"]) == i:
                out[i] = int(r["times_delivered"])
    return out


async def _ack_deleted(
    client: AnyRedis, stream: str, group: str, consumer: str, gone: list[str], live: set[str]
) -> None:
    """Ack pending entries that no longer exist, so they stop being pending forever."""
    ids = [i for i in gone if i]
    if len(ids) < len(gone):  # 6.2 did not name them: find our pending ids with no entry
        rows = cast(
            "list[dict[str, Any]]",
            await client.xpending_range(stream, group, "-", "+", 1000, consumername=consumer),
        )
        for r in rows:
            mid = _s(r["message_id"])
            if mid not in live and not await client.xrange(stream, min=mid, max=mid):
                ids.append(mid)
    if ids:
        await client.xack(stream, group, *ids)


async def reclaim_idle(
    client: AnyRedis,
    streams: list[str],
    group: str,
    consumer: str,
    min_idle_ms: int,
    count: int,
) -> list[Entry]:
    """Claim entries idle longer than `min_idle_ms` (dead consumers); with delivery counts."""
    claimed: list[Entry] = []
    for stream in streams:
        cursor = "0-0"
        while len(claimed) < count:
            resp = await client.xautoclaim(
                stream, group, consumer, min_idle_time=min_idle_ms, start_id=cursor, count=count
            )
            # 7.x also lists ids deleted meanwhile; Redis already removed them from the PEL.
            cursor, raw, _deleted = split_autoclaim(resp)
            entries, gone = parse_entries(stream, raw)
            if gone:
                await _ack_deleted(client, stream, group, consumer, gone, {e.id for e in entries})
            counts = await delivery_counts(client, stream, group, [e.id for e in entries])
            for e in entries:
                e.deliveries = counts.get(e.id, e.deliveries)
            claimed.extend(entries)
            if cursor == "0-0":
                break
    return claimed


async def claim_for_retry(
    client: AnyRedis, group: str, consumer: str, entries: list[Entry]
) -> list[Entry]:
    """Re-deliver our own pending entries to ourselves after a data failure (XCLAIM,
    min-idle 0).

    This counts as a delivery (the group's counter goes up) and resets the idle time,
    so peers do not reclaim an entry we are still retrying.
    """
    by_stream: dict[str, list[Entry]] = {}
    for e in entries:
        by_stream.setdefault(e.stream, []).append(e)
    out: list[Entry] = []
    for stream, group_entries in by_stream.items():
        raw = await client.xclaim(stream, group, consumer, 0, [e.id for e in group_entries])
        fresh, gone = parse_entries(stream, cast("list[Any]", raw))
        if gone:
            await _ack_deleted(client, stream, group, consumer, gone, {e.id for e in fresh})
        before = {e.id: e.deliveries for e in group_entries}
        for e in fresh:
            e.deliveries = before.get(e.id, 1) + 1
        out.extend(fresh)
    return out


async def touch_for_retry(
    client: AnyRedis, group: str, consumer: str, entries: list[Entry]
) -> list[Entry]:
    """Keep our own pending entries for an outage retry, without counting a delivery.

    `XCLAIM ... JUSTID` (min-idle 0) resets the idle time like a plain XCLAIM but leaves
    the delivery counter alone: an outage is no failure of the event's data. The fields
    are already in memory. Entries no longer pending (a peer reclaimed and acked them, or
    Redis 7 found them deleted) are dropped.
    """
    by_stream: dict[str, list[Entry]] = {}
    for e in entries:
        by_stream.setdefault(e.stream, []).append(e)
    out: list[Entry] = []
    for stream, group_entries in by_stream.items():
        ids = await client.xclaim(
            stream, group, consumer, 0, [e.id for e in group_entries], justid=True
        )
        kept = {_s(i) for i in cast("list[Any]", ids)}
        out.extend(e for e in group_entries if e.id in kept)
    return out
