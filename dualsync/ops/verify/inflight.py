"""Which keys have an event still on its way: in a stream and not yet acknowledged.

The verifier never calls such a key drift: the worker simply has not applied it yet. The
unapplied part of each shard stream (entries after the group's last-delivered id, plus the
pending ones) is read, up to `cap` entries; past the cap nothing can be ruled out, and
`InFlight.everything` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from dualsync.redisconn import AnyRedis
from dualsync.schema.streams import stream_keys

__all__ = ["InFlight", "unapplied"]


@dataclass(slots=True)
class InFlight:
    """(entity, raw key) pairs with an unapplied event."""

    pairs: set[tuple[str, str]] = field(default_factory=set)
    #: the unapplied backlog was larger than the cap: treat every key as possibly in flight
    everything: bool = False

    def __contains__(self, item: tuple[str, str]) -> bool:
        return self.everything or item in self.pairs

    def __or__(self, other: InFlight) -> InFlight:
        """Keys in flight in either look."""
        return InFlight(self.pairs | other.pairs, self.everything or other.everything)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _pair(fields: dict[bytes, bytes]) -> tuple[str, str]:
    return _s(fields.get(b"entity", b"")), _s(fields.get(b"key", b""))


async def unapplied(
    client: AnyRedis, prefix: str, shards: int, group: str = "apply", cap: int = 100_000
) -> InFlight:
    """The unapplied events of every shard stream."""
    out = InFlight()
    seen = 0
    for stream in stream_keys(prefix, shards):
        try:
            groups: list[dict[str, Any]] = await client.xinfo_groups(stream)
        except ResponseError:
            continue  # no stream: nothing in flight there
        info = next((g for g in groups if _s(g.get("name")) == group), None)
        start = "-" if info is None else f"({_s(info.get('last-delivered-id', '0-0'))}"
        fresh = await client.xrange(stream, min=start, max="+", count=cap - seen + 1)
        seen += len(fresh)
        out.pairs.update(_pair(f) for _, f in fresh)
        if info is not None and int(info.get("pending", 0)):
            rows = await client.xpending_range(stream, group, "-", "+", cap - seen + 1)
            seen += len(rows)
            async with client.pipeline(transaction=False) as pipe:
                for r in rows:
                    mid = _s(r["message_id"])
                    pipe.xrange(stream, min=mid, max=mid)
                for entries in await pipe.execute():
                    out.pairs.update(_pair(f) for _, f in entries)
        if seen > cap:
            out.everything = True
            return out
    return out
