"""Stream entries -> mapped `Change`s, or dead letters for input that can never apply.

Decoding and mapping are deterministic: an invalid envelope, an unknown entity, a bad
signature or a payload that breaks the mapping fails the same way on every delivery,
so such an event is dead-lettered at once (with its reason) instead of being retried.
That includes a key that does not fit its entity's key strategy, for deletes as for
upserts: every change leaves decoding keyed by its canonical legacy key
(`EntityMapping.canonical_key`), the one spelling the version gate knows it by.
"""

from __future__ import annotations

import asyncio
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

#: decoding hands the event loop back every this many entries: the consumer decodes its
#: next batch while the one before is in Postgres, and that transaction can only send its
#: next statement when decoding lets it (a statement's round trip is well under a
#: millisecond, 25 entries ~0.3 ms of decoding; with 250 a batch of 500 applied 15% slower)
YIELD_EVERY = 25


class NoLegacyReaderError(PermanentError):
    """A reference event arrived but this worker has no legacy-store reader configured."""

    reason = "ref_unreadable"


@dataclass(slots=True)
class Decoded:
    """The mapped changes of a batch, who owns them, and what must be dead-lettered."""

    #: one change per (entity, canonical key)
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
    ev: Event, key: str, ms: MappingSet, legacy: LegacyReader | None, docs: list[Any]
) -> Change:
    """The change of an event whose key is already canonical; a document read from the
    legacy store is appended to `docs` (its secrets are scrubbed from any error)."""
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
        rows=ms.entity(ev.entity).to_rows(key, payload),
    )


def _text(shown: Redactor, exc: BaseException, e: Entry, docs: list[Any]) -> str:
    """The error text of an entry, without its payload's secret values."""
    return shown.scrub(error_text(exc), _raw(e, b"entity"), [e], docs)


def _letter(e: Entry, reason: str, error: str) -> DeadLetter:
    return DeadLetter(e, reason, error, _raw(e, b"entity"), _raw(e, b"key"), _raw(e, b"event_id"))


@dataclass(slots=True)
class _Failures:
    """Where an entry goes when decoding or mapping it fails (see `decode_batch`)."""

    out: Decoded
    shown: Redactor
    max_deliveries: int

    def __call__(self, e: Entry, exc: Exception, docs: list[Any]) -> None:
        shown, out = self.shown, self.out
        if isinstance(exc, PermanentError):
            out.letters.append(_letter(e, exc.reason, _text(shown, exc, e, docs)))
            return
        if isinstance(exc, RetryableError):
            log.warning(
                "decode_will_retry", error=_text(shown, exc, e, docs), event_id=_raw(e, b"event_id")
            )
            out.retry.append(e)
            return
        # Not a rule we wrote: a bug, or an adapter failing in an unforeseen way. Crashing
        # would redeliver the entry to the next worker and crash it too; retry it a few
        # times instead, then dead-letter it so the events behind it keep flowing. The
        # traceback is logged scrubbed: the exception's message may quote a value.
        trace = shown.scrub(traceback_text(exc), _raw(e, b"entity"), [e], docs)
        event_id = _raw(e, b"event_id")
        log.error("decode_failed_unexpectedly", event_id=event_id, traceback=trace)
        if e.deliveries >= self.max_deliveries:
            out.letters.append(_letter(e, "internal_error", _text(shown, exc, e, docs)))
        else:
            out.retry_counted.append(e)


def _tops(entries: list[Entry]) -> set[int]:
    """Positions of the entries that are the highest version of their (entity, key) as
    spelled on the stream, the first seen on a tie: a cheap look at the raw fields, so
    the event that will win is mapped while its payload is fresh in the cache (mapping
    each document later, after the whole batch is parsed, cost 5 us more an event)."""
    best: dict[tuple[bytes | None, bytes | None], tuple[int, int]] = {}
    for i, e in enumerate(entries):
        f = e.fields
        try:
            v = int(f.get(b"version", b""))
        except ValueError:  # decoding refuses it
            continue
        k = (f.get(b"entity"), f.get(b"key"))
        top = best.get(k)
        if top is None or v > top[0]:
            best[k] = (v, i)
    return {i for _, i in best.values()}


class _Winners:
    """The change chosen per (entity, canonical key), and the entries it answers for."""

    def __init__(self, out: Decoded) -> None:
        self.out = out
        self.at: dict[tuple[str, str], int] = {}

    def beats(self, k: tuple[str, str], version: int) -> bool:
        """True when the change held for `k` is at least `version` (it wins a tie)."""
        j = self.at.get(k)
        return j is not None and self.out.changes[j].version >= version

    def offer(self, k: tuple[str, str], change: Change, e: Entry) -> None:
        """`change` (of entry `e`) for `k`: it wins over a lower version, else rides along."""
        out = self.out
        j = self.at.get(k)
        if j is None:
            self.at[k] = len(out.changes)
            out.changes.append(change)
            out.owners[k] = [e]
        elif change.version > out.changes[j].version:
            out.changes[j] = change
            out.owners[k].insert(0, e)
        else:
            out.owners[k].append(e)


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
    """Decode and validate every entry of a batch; map the one event per key that can win.

    Every envelope is checked (shape, signature, size, payload JSON, key strategy), and
    an entry that fails is dead-lettered or retried. Mapping to rows, the costly half (and,
    for a reference event, a read of the legacy store), is done for the highest version of
    each key only: the events below it in the same batch can never apply (the gate would
    drop them), so they are acked with the winner as superseded, unmapped. If the highest
    fails to map it is dead-lettered (or retried) and the next one down is tried, so the
    change that applies is the one a map-everything decoder would have chosen.
    """
    out = Decoded()
    fail = _Failures(out, redactor or Redactor(ms), max_deliveries)
    tops = _tops(entries)
    won = _Winners(out)
    below: list[tuple[Event, str, Entry]] = []  # under the top of their spelling
    for n, e in enumerate(entries):
        if n and n % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # let the batch in Postgres send its next statement
        docs: list[Any] = []
        try:
            ev = decode_event(
                e.fields,
                max_payload_bytes=max_payload_bytes,
                signing_keys=signing_keys,
                require_signature=require_signature,
            )
            # MappingError when the entity is unknown or the key does not fit its strategy
            key = ms.entity(ev.entity).canonical_key(ev.key)
            if n not in tops:
                below.append((ev, key, e))
                continue
            change = await _to_change(ev, key, ms, legacy, docs)
        except Exception as exc:  # noqa: BLE001 - every kind is handled by `fail`
            fail(e, exc, docs)
            continue
        won.offer((ev.entity, key), change, e)
    await _settle(below, won, fail, ms, legacy)
    return out


async def _settle(
    below: list[tuple[Event, str, Entry]],
    won: _Winners,
    fail: _Failures,
    ms: MappingSet,
    legacy: LegacyReader | None,
) -> None:
    """The events under the top of their spelling: superseded by the winner (acked with
    it), unless that top failed to map; then the highest of them that maps wins."""
    rest: dict[tuple[str, str], list[tuple[Event, Entry]]] = {}
    for ev, key, e in below:
        k = (ev.entity, key)
        if won.beats(k, ev.version):
            won.out.owners[k].append(e)
        else:
            rest.setdefault(k, []).append((ev, e))
    for k, candidates in rest.items():
        candidates.sort(key=_version)  # stable: on equal versions the first seen wins
        for ev, e in candidates:
            if won.beats(k, ev.version):
                won.out.owners[k].append(e)
                continue
            docs: list[Any] = []
            try:
                change = await _to_change(ev, k[1], ms, legacy, docs)
            except Exception as exc:  # noqa: BLE001 - every kind is handled by `fail`
                fail(e, exc, docs)
                continue
            won.offer(k, change, e)


def _version(candidate: tuple[Event, Entry]) -> int:
    return -candidate[0].version
