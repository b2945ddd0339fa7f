"""A stream entry as read from Redis, with its delivery count."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Entry", "parse_entries"]


@dataclass(slots=True)
class Entry:
    """One stream entry in this consumer's hands."""

    stream: str
    id: str
    fields: dict[bytes, bytes]
    #: how many times the group has delivered it (1 on first read); outage retries do not
    #: count (see `dualsync.worker.reclaim.touch_for_retry`)
    deliveries: int = 1
    #: outage (systemic) retries in this consumer's hands, for their backoff only
    outage_retries: int = 0


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def parse_entries(
    stream: bytes | str,
    raw: list[tuple[bytes, dict[bytes, bytes] | None] | None],
    deliveries: int = 1,
) -> tuple[list[Entry], list[str]]:
    """Entries with fields, and ids whose entry was deleted (trimmed) meanwhile ("" when
    Redis did not say which id it was)."""
    name = _s(stream)
    ok: list[Entry] = []
    gone: list[str] = []
    for item in raw:
        if item is None:  # Redis 6.2 XAUTOCLAIM: a deleted entry comes back as nil, id unknown
            gone.append("")
            continue
        entry_id, fields = item
        if fields:
            ok.append(Entry(name, _s(entry_id), fields, deliveries))
        else:
            gone.append(_s(entry_id))
    return ok, gone
