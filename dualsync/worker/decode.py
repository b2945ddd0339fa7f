"""Stream entries -> mapped `Change`s, or dead letters for input that can never apply.

Decoding and mapping are deterministic: an invalid envelope, an unknown entity, a bad
signature or a payload that breaks the mapping fails the same way on every delivery,
so such an event is dead-lettered at once (with its reason) instead of being retried.
That includes a key that does not fit its entity's key strategy, for deletes as for
upserts: every change leaves decoding keyed by its canonical legacy key
(`EntityMapping.canonical_key`), the one spelling the version gate knows it by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dualsync.consumers.change import Change
from dualsync.errors import PermanentError, RetryableError
from dualsync.logging import get_logger
from dualsync.schema.envelope import Op
from dualsync.schema.fastcheck import Event, decode_event
from dualsync.schema.legacy import LegacyReader
from dualsync.schema.mapping import MappingSet
from dualsync.worker.deadletter import DeadLetter, Redactor, error_text, traceback_text
from dualsync.worker.entry import Entry

__all__ = ["Decoded", "NoLegacyReaderError", "decode_batch"]

log = get_logger(__name__)


class NoLegacyReaderError(PermanentError):
    """A reference event arrived but this worker has no legacy-store reader configured."""

    reason = "ref_unreadable"


@dataclass(slots=True)
class Decoded:
    """The mapped changes of a batch, who owns them, and what must be dead-lettered."""

    changes: list[Change] = field(default_factory=list)
    owners: dict[tuple[str, str], list[Entry]] = field(default_factory=dict)
    letters: list[DeadLetter] = field(default_factory=list)
    #: entries to try again later, not counted as a delivery: the legacy store did not
    #: answer a reference read (an outage, like the database's)
    retry: list[Entry] = field(default_factory=list)
    #: entries to try again later, counted: decoding failed in a way no rule foresaw
    retry_counted: list[Entry] = field(default_factory=list)


def _raw(entry: Entry, name: bytes) -> str:
    return entry.fields.get(name, b"").decode(errors="replace")[:512]


def _delete(ev: Event, key: str) -> Change:
    return Change(ev.entity, key, ev.version, deleted=True, event_id=ev.event_id, rows=None)


async def _to_change(
    ev: Event, ms: MappingSet, legacy: LegacyReader | None, docs: list[Any]
) -> Change:
    """The change of an event, keyed by its canonical key; a document read from the legacy
    store is appended to `docs` (its secrets are scrubbed from any error)."""
    em = ms.entity(ev.entity)
    key = em.canonical_key(ev.key)  # MappingError when the key does not fit the strategy
    if ev.op is Op.DELETE:
        return _delete(ev, key)
    payload = ev.payload
    if ev.ref:
        if legacy is None:
            raise NoLegacyReaderError(
                "reference event needs a legacy-store reader: start the worker with one"
            )
        record = await legacy.read(ev.entity, ev.key)  # the store's own spelling
        if record is None:  # deleted since the event was published
            return _delete(ev, key)
        payload = record.doc
        docs.append(payload)
    assert payload is not None  # noqa: S101 - the envelope guarantees it for upserts
    return Change(
        ev.entity,
        key,
        ev.version,
        deleted=False,
        event_id=ev.event_id,
        rows=em.to_rows(key, payload),
    )


def _text(shown: Redactor, exc: BaseException, e: Entry, docs: list[Any]) -> str:
    """The error text of an entry, without its payload's secret values."""
    return shown.scrub(error_text(exc), _raw(e, b"entity"), [e], docs)


def _letter(e: Entry, reason: str, error: str) -> DeadLetter:
    return DeadLetter(e, reason, error, _raw(e, b"entity"), _raw(e, b"key"), _raw(e, b"event_id"))


async def decode_batch(
    entries: list[Entry],
    ms: MappingSet,
    *,
    legacy: LegacyReader | None,
    max_payload_bytes: int,
    signing_keys: Mapping[str, bytes],
    require_signature: bool,
    max_deliveries: int = 5,
    redactor: Redactor | None = None,
) -> Decoded:
    """Decode, validate and map every entry of a batch."""
    out = Decoded()
    shown = redactor or Redactor(ms)
    for e in entries:
        docs: list[Any] = []
        try:
            ev = decode_event(
                e.fields,
                max_payload_bytes=max_payload_bytes,
                signing_keys=signing_keys,
                require_signature=require_signature,
            )
            change = await _to_change(ev, ms, legacy, docs)
        except PermanentError as exc:
            out.letters.append(_letter(e, exc.reason, _text(shown, exc, e, docs)))
            continue
        except RetryableError as exc:
            log.warning(
                "decode_will_retry", error=_text(shown, exc, e, docs), event_id=_raw(e, b"event_id")
            )
            out.retry.append(e)
            continue
        except Exception as exc:  # noqa: BLE001 - retried, then dead-lettered (below)
            # Not a rule we wrote: a bug, or an adapter failing in an unforeseen way. Crashing
            # would redeliver the entry to the next worker and crash it too; retry it a few
            # times instead, then dead-letter it so the events behind it keep flowing. The
            # traceback is logged scrubbed: the exception's message may quote a value.
            trace = shown.scrub(traceback_text(exc), _raw(e, b"entity"), [e], docs)
            event_id = _raw(e, b"event_id")
            log.error("decode_failed_unexpectedly", event_id=event_id, traceback=trace)  # noqa: TRY400 - scrubbed
            if e.deliveries >= max_deliveries:
                out.letters.append(_letter(e, "internal_error", _text(shown, exc, e, docs)))
            else:
                out.retry_counted.append(e)
            continue
        out.changes.append(change)
        out.owners.setdefault((change.entity, change.key), []).append(e)
    return out
