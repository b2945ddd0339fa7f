"""The envelope check of the worker's hot path: `decode_fields`' verdicts, without pydantic.

`decode_fields` validates every event field by field and then as a `ChangeEvent` model:
about a third of the worker's CPU, a model per event (bench/apply profile). `decode_event`
checks the same rules on the raw stream fields in one pass and returns a plain `Event`
when the envelope is plainly valid. Whenever any rule has something to say (a missing or
unknown field, a NUL, a bad pattern, a payload that does not parse, a signature to
check), it returns nothing of its own and calls `decode_fields`, so every error (reason,
field and message) is the one `decode_fields` raises, word for word.
`tests/test_fastcheck.py` checks on generated envelopes that both agree.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from dualsync.schema.codec import _JSON_NUL, DEFAULT_MAX_PAYLOAD, KNOWN, RawFields, decode_fields
from dualsync.schema.envelope import ENTITY_PATTERN, ID_PATTERN, KEY_MAX, Op
from dualsync.schema.extjson import loads_payload

__all__ = ["Event", "decode_event"]

# The model's patterns (`^...$` in pydantic's Rust regex: no trailing newline) as
# whole-string matches.
_ID: Final = re.compile(ID_PATTERN.removeprefix("^").removesuffix("$"))
_ENTITY: Final = re.compile(ENTITY_PATTERN.removeprefix("^").removesuffix("$"))
_KNOWN: Final = frozenset(k.encode() for k in KNOWN)
_OPS: Final = {b"upsert": Op.UPSERT, b"delete": Op.DELETE}
_REFS: Final = {b"true": True, b"false": False}
_INT64: Final = 2**63
_MAX_DIGITS: Final = 19


class Event(NamedTuple):
    """What the apply path reads of a valid `ChangeEvent` (same names, same values; a
    tuple because building one costs a tenth of a frozen dataclass)."""

    event_id: str
    source: str
    entity: str
    key: str
    op: Op
    version: int
    occurred_at: dt.datetime
    payload: dict[str, Any] | None
    ref: bool
    trace_id: str | None
    sig: str | None


def decode_event(
    fields: RawFields,
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
    signing_keys: Mapping[str, bytes] | None = None,
    require_signature: bool = False,
) -> Event:
    """`decode_fields` as an `Event`: the same events accepted, the same errors raised."""
    ev = None if require_signature else _plain(fields, max_payload_bytes, signing_keys or {})
    if ev is not None:
        return ev
    m = decode_fields(
        fields,
        max_payload_bytes=max_payload_bytes,
        signing_keys=signing_keys,
        require_signature=require_signature,
    )
    return Event(
        m.event_id, m.source, m.entity, m.key, m.op, m.version, m.occurred_at, m.payload,
        m.ref, m.trace_id, m.sig,
    )  # fmt: skip


def _text(raw: Any) -> str | None:
    """An optional field's text, or None when absent; raises when it needs a closer look."""
    if raw is None:
        return None
    text: str = raw.decode()
    if "\x00" in text:
        raise ValueError
    return text


def _plain(fields: RawFields, max_bytes: int, keys: Mapping[str, bytes]) -> Event | None:  # noqa: PLR0911 - one exit per rule
    """The event of a plainly valid envelope read from Redis (bytes), else None."""
    if not _KNOWN.issuperset(fields):  # str-keyed fields too: left to decode_fields
        return None
    get: Any = fields.get
    try:
        op = _OPS.get(get(b"op"))
        raw_version = get(b"version")
        ref = _REFS.get(get(b"ref", b"false"))
        if op is None or ref is None or get(b"schema_version", b"1") != b"1":
            return None
        if not (raw_version.isdigit() and len(raw_version) <= _MAX_DIGITS):
            return None
        version = int(raw_version)
        event_id = get(b"event_id").decode()
        source = get(b"source").decode()
        entity = get(b"entity").decode()
        key = get(b"key").decode()
        when = get(b"occurred_at").decode()
        trace_id = _text(get(b"trace_id"))
        sig = _text(get(b"sig"))
        occurred = dt.datetime.fromisoformat(when)
    except (AttributeError, UnicodeDecodeError, ValueError, TypeError):
        return None
    if source in keys:  # a signature to check: decode_fields does
        return None
    if not (
        version < _INT64
        and _ID.fullmatch(event_id)
        and _ID.fullmatch(source)
        and _ENTITY.fullmatch(entity)
        and 0 < len(key) <= KEY_MAX
        and "\x00" not in key
        and "\x00" not in when
        and occurred.tzinfo is not None
    ):
        return None
    raw = get(b"payload")
    payload = None if raw is None else _payload(raw, max_bytes)
    if raw is not None and payload is None:
        return None
    if (op is Op.DELETE and raw is not None) or (ref and raw is not None):
        return None
    if op is Op.UPSERT and raw is None and not ref:
        return None
    return Event(event_id, source, entity, key, op, version, occurred, payload, ref, trace_id, sig)


def _payload(raw: Any, max_bytes: int) -> dict[str, Any] | None:
    """The document of a payload `decode_fields` would accept as is, else None."""
    if type(raw) is not bytes or len(raw) > max_bytes:
        return None
    # memchr for a backslash first; then rfind, which meets the needle's rare first byte
    # first (`in` checks its last, a "0": in an embedding's digits, twice as slow)
    if b"\\" in raw and raw.rfind(b"\\u0000") >= 0 and _JSON_NUL.search(raw):
        return None
    # decode_fields refuses a payload that is not UTF-8 before parsing it. Both parsers
    # refuse invalid UTF-8 themselves, except encoded surrogates (ED A0..BF ..), which the
    # stdlib one passes: only a payload holding an ED byte needs the (copying) check.
    if not raw.isascii() and b"\xed" in raw:
        try:
            raw.decode()
        except UnicodeDecodeError:
            return None
    try:
        value = loads_payload(raw)
    except ValueError:
        return None
    return value if type(value) is dict else None
