"""Stream entries -> mapped `Change`s, or dead letters for input that can never apply.

Decoding and mapping are deterministic: an invalid envelope, an unknown entity, a bad
signature or a payload that breaks the mapping fails the same way on every delivery,
so such an event is dead-lettered at once (with its reason) instead of being retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dualsync.consumers.change import Change
from dualsync.errors import PermanentError
from dualsync.schema.codec import decode_fields
from dualsync.schema.envelope import ChangeEvent, Op
from dualsync.schema.legacy import LegacyReader
from dualsync.schema.mapping import MappingSet
from dualsync.worker.deadletter import DeadLetter, error_text
from dualsync.worker.entry import Entry

__all__ = ["Decoded", "NoLegacyReaderError", "decode_batch"]


class NoLegacyReaderError(PermanentError):
    """A reference event arrived but this worker has no legacy-store reader configured."""

    reason = "ref_unreadable"


@dataclass(slots=True)
class Decoded:
    """The mapped changes of a batch, who owns them, and what must be dead-lettered."""

    changes: list[Change] = field(default_factory=list)
    owners: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)
    letters: list[DeadLetter] = field(default_factory=list)


def _raw(entry: Entry, name: bytes) -> str:
    return entry.fields.get(name, b"").decode(errors="replace")[:512]


def _delete(ev: ChangeEvent) -> Change:
    return Change(ev.entity, ev.key, ev.version, deleted=True, event_id=ev.event_id, rows=None)


async def _to_change(ev: ChangeEvent, ms: MappingSet, legacy: LegacyReader | None) -> Change:
    em = ms.entity(ev.entity)
    if ev.op is Op.DELETE:
        return _delete(ev)
    payload = ev.payload
    if ev.ref:
        if legacy is None:
            raise NoLegacyReaderError(
                "reference event needs a legacy-store reader: start the worker with one"
            )
        record = await legacy.read(ev.entity, ev.key)
        if record is None:  # deleted since the event was published
            return _delete(ev)
        payload = record.doc
    assert payload is not None  # noqa: S101 - the envelope guarantees it for upserts
    return Change(
        ev.entity,
        ev.key,
        ev.version,
        deleted=False,
        event_id=ev.event_id,
        rows=em.to_rows(ev.key, payload),
    )


async def decode_batch(
    entries: list[Entry],
    ms: MappingSet,
    *,
    legacy: LegacyReader | None,
    max_payload_bytes: int,
    signing_keys: Mapping[str, bytes],
    require_signature: bool,
) -> Decoded:
    """Decode, validate and map every entry of a batch."""
    out = Decoded()
    for e in entries:
        try:
            ev = decode_fields(
                e.fields,
                max_payload_bytes=max_payload_bytes,
                signing_keys=signing_keys,
                require_signature=require_signature,
            )
            change = await _to_change(ev, ms, legacy)
        except PermanentError as exc:
            out.letters.append(
                DeadLetter(
                    e,
                    exc.reason,
                    error_text(exc),
                    _raw(e, b"entity"),
                    _raw(e, b"key"),
                    _raw(e, b"event_id"),
                )
            )
            continue
        out.changes.append(change)
        out.owners.setdefault((change.entity, change.key), []).append(e)
    return out
