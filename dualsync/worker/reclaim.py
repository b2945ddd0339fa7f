"""Pending-entry recovery: XAUTOCLAIM from dead consumers, XCLAIM for our own retries.

XAUTOCLAIM (Redis >= 6.2) returns `[cursor, entries]` on 6.2 and
`[cursor, entries, deleted_ids]` on 7.x; both are handled. Entries trimmed while
pending come back with no fields (6.2) or in `deleted_ids` (7.x, already removed from
the PEL); the 6.2 form is acked here so it stops being pending.
"""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aredis

from dualsync.worker.entry import Entry, parse_entries

__all__ = ["claim_for_retry", "delivery_counts", "reclaim_idle", "split_autoclaim"]


def split_autoclaim(resp: Any) -> tuple[str, list[Any], list[str]]:
    """(next cursor, claimed entries, deleted ids) from either XAUTOCLAIM reply shape."""
    cursor_raw, raw = resp[0], resp[1]
    deleted = [_s(i) for i in resp[2]] if len(resp) > 2 else []  # noqa: PLR2004 - the 7.x shape
    return _s(cursor_raw), list(raw), deleted


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def delivery_counts(
    client: aredis.Redis, stream: str, group: str, ids: list[str]
) -> dict[str, int]:
    """Times delivered, per entry id, from XPENDING (one call for the id range)."""
    if not ids:
        return {}
    rows = await client.xpending_range(
        stream, group, min=min(ids, key=_id_key), max=max(ids, key=_id_key), count=len(ids) * 4 + 10
    )
    wanted = set(ids)
    out = {}
    for r in cast("list[dict[str, Any]]", rows):
        mid = _s(r["message_id"])
        if mid in wanted:
            out[mid] = int(r["times_delivered"])
    return out


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def _ack_deleted(
    client: aredis.Redis, stream: str, group: str, consumer: str, gone: list[str], live: set[str]
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
    client: aredis.Redis,
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
    client: aredis.Redis, group: str, consumer: str, entries: list[Entry]
) -> list[Entry]:
    """Re-deliver our own pending entries to ourselves (XCLAIM, min-idle 0).

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
