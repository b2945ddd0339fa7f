"""Stream trimming that never drops an unacked event: XTRIM MINID below the oldest pending.

MAXLEN trimming can delete entries still pending in a consumer group (a crashed
worker's batch). MINID set to the oldest pending id of the group (or, with nothing
pending, the group's last-delivered id) removes only entries every consumer is done
with. Entries not yet delivered are newer than last-delivered, so they are kept too.
Every command names one stream, so this works unchanged on a Redis Cluster.
"""

from __future__ import annotations

from typing import Any, cast

from redis.exceptions import ResponseError

from dualsync.redisconn import AnyRedis

__all__ = ["trim_streams"]


async def _safe_minid(client: AnyRedis, stream: str) -> str | None:
    try:
        groups = cast("list[dict[str, Any]]", await client.xinfo_groups(stream))
    except ResponseError:  # no such stream
        return None
    if not groups:
        return None  # no consumer group yet: nothing has been applied, keep everything
    floor: tuple[int, int] | None = None
    for g in groups:
        # Every group on the stream must be done with an entry before it goes.
        pending = await client.xpending(stream, g["name"])
        lowest = pending["min"] if int(pending["pending"]) else None
        cand = lowest or g["last-delivered-id"]
        cand = cand.decode() if isinstance(cand, bytes) else str(cand)
        ms, _, seq = cand.partition("-")
        key = (int(ms), int(seq or 0))
        if lowest is None:
            key = (key[0], key[1] + 1)  # everything up to last-delivered is done
        floor = key if floor is None or key < floor else floor
    if floor is None or floor == (0, 1):
        return None
    return f"{floor[0]}-{floor[1]}"


async def trim_streams(client: AnyRedis, streams: list[str]) -> int:
    """Trim every stream to its safe MINID (all groups done); return entries removed."""
    removed = 0
    for s in streams:
        minid = await _safe_minid(client, s)
        if minid is not None:
            removed += int(await client.xtrim(s, minid=minid, approximate=False))
    return removed
