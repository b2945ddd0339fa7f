"""Encode change events to Redis stream fields and decode them back, validating everything.

`decode_fields` is the single gate between the stream and the apply path: anything it
lets through is a well-formed `ChangeEvent`; anything it rejects raises `EnvelopeError`
naming the field and a dead-letter reason code. The worker's hot path goes through
`dualsync.schema.fastcheck.decode_event`, which returns what this function returns for
every envelope it finds plainly valid and hands every other one to this function.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final, TypeAlias

from pydantic import ValidationError

from dualsync.schema.envelope import SCHEMA_VERSION, ChangeEvent, Op
from dualsync.schema.errors import EnvelopeError, SignatureError
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.signing import sign_fields, verify_fields

__all__ = ["DEFAULT_MAX_PAYLOAD", "RawFields", "build_fields", "decode_fields", "encode_event"]

DEFAULT_MAX_PAYLOAD: Final = 1024 * 1024
REQUIRED: Final = ("event_id", "source", "entity", "key", "op", "version", "occurred_at")
KNOWN: Final = frozenset((*REQUIRED, "payload", "ref", "schema_version", "trace_id", "sig"))
_OPS: Final = frozenset((Op.UPSERT.value, Op.DELETE.value))
_SCHEMA: Final = str(SCHEMA_VERSION)

# An escaped NUL (\u0000) in JSON text: preceded by an even number of backslashes.
_JSON_NUL: Final = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")

#: what redis-py hands back for one stream entry
RawFields: TypeAlias = Mapping[bytes, bytes] | Mapping[str, str] | Mapping[bytes | str, bytes | str]


def format_time(value: dt.datetime) -> str:
    """RFC 3339 UTC with microseconds and a `Z`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def build_fields(
    *,
    event_id: str,
    source: str,
    entity: str,
    key: str,
    op: str,
    version: int,
    occurred_at: str,
    payload_json: str | None,
    ref: bool = False,
    trace_id: str | None = None,
    sign_key: bytes | None = None,
) -> dict[str, str]:
    """Stream fields of one event, already serialised (the producers' hot path)."""
    fields = {
        "event_id": event_id,
        "source": source,
        "entity": entity,
        "key": key,
        "op": op,
        "version": str(version),
        "occurred_at": occurred_at,
        "schema_version": "1",
    }
    if payload_json is not None:
        fields["payload"] = payload_json
    if ref:
        fields["ref"] = "true"
    if trace_id is not None:
        fields["trace_id"] = trace_id
    if sign_key is not None:
        fields["sig"] = sign_fields(fields, sign_key)
    return fields


def encode_event(event: ChangeEvent, sign_key: bytes | None = None) -> dict[str, str]:
    """Stream fields of a `ChangeEvent` (replay, tests, re-publishing)."""
    return build_fields(
        event_id=event.event_id,
        source=event.source,
        entity=event.entity,
        key=event.key,
        op=event.op.value,
        version=event.version,
        occurred_at=format_time(event.occurred_at),
        payload_json=None if event.payload is None else dumps_payload(event.payload).decode(),
        ref=event.ref,
        trace_id=event.trace_id,
        sign_key=sign_key,
    )


def _text(fields: RawFields) -> dict[str, str]:
    try:  # one comprehension: the common case, every field valid UTF-8
        return {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()
        }
    except UnicodeDecodeError:
        pass
    out: dict[str, str] = {}
    for k, v in fields.items():
        name = k.decode("utf-8", "replace") if isinstance(k, bytes) else k
        try:
            out[name] = v.decode("utf-8") if isinstance(v, bytes) else v
        except UnicodeDecodeError:
            raise EnvelopeError("is not valid UTF-8", field=name) from None
    return out


def _check_shape(f: dict[str, str]) -> None:
    for name in REQUIRED:
        if not f.get(name):
            raise EnvelopeError("missing required field", field=name)
    if not KNOWN.issuperset(f):
        unknown = sorted(set(f) - KNOWN)
        raise EnvelopeError(f"unknown field(s) {unknown}", field=unknown[0])
    # One scan of every value for the common case (no NUL anywhere); the payload's own
    # NUL rules are _payload's, so a hit is looked at field by field.
    if "\x00" in "".join(f.values()):
        for name, value in f.items():
            if name != "payload" and "\x00" in value:
                raise EnvelopeError("contains a NUL byte", field=name, reason="nul_byte")
    if f["op"] not in _OPS:
        raise EnvelopeError(f"must be 'upsert' or 'delete', got {f['op'][:20]!r}", field="op")
    v = f["version"]
    if not (v.isascii() and v.isdigit()) or len(v) > 19:  # noqa: PLR2004 - 19 digits covers int64
        raise EnvelopeError(f"must be a non-negative integer, got {v[:30]!r}", field="version")
    if f.get("schema_version", "1") != _SCHEMA:
        raise EnvelopeError(
            f"unsupported schema_version {f['schema_version'][:10]!r}; this worker reads "
            f"{SCHEMA_VERSION}: upgrade the worker",
            field="schema_version",
        )


def _payload(raw: str | bytes, max_bytes: int) -> dict[str, Any]:
    data = raw if isinstance(raw, bytes) else raw.encode()
    if len(data) > max_bytes:
        raise EnvelopeError(
            f"{len(data)} bytes exceeds the {max_bytes}-byte limit; publish a reference event",
            field="payload",
            reason="oversized",
        )
    # memchr for a backslash first; then rfind, which meets the needle's rare first byte
    # first (`in` checks its last, a "0": in an embedding's digits, twice as slow)
    if b"\\" in data and data.rfind(b"\\u0000") >= 0 and _JSON_NUL.search(data):
        raise EnvelopeError(
            "contains a NUL character (\\u0000): PostgreSQL text cannot store it",
            field="payload",
            reason="nul_byte",
        )
    try:
        value = loads_payload(data)
    except ValueError as exc:
        raise EnvelopeError(str(exc), field="payload", reason="invalid_json") from None
    if type(value) is not dict:
        raise EnvelopeError(
            f"must be a JSON object (the document), got {type(value).__name__}", field="payload"
        )
    return value


def _raw_payload(fields: RawFields, text: dict[str, str]) -> str | bytes:
    # The bytes as read from Redis, when we have them: no encode/decode round trip.
    raw = fields.get(b"payload")  # type: ignore[call-overload]  # str-keyed fields: None
    return raw if type(raw) is bytes else text["payload"]


def decode_fields(
    fields: RawFields,
    *,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD,
    signing_keys: Mapping[str, bytes] | None = None,
    require_signature: bool = False,
) -> ChangeEvent:
    """Validate one stream entry and return its `ChangeEvent`; raise `EnvelopeError` if bad."""
    f = _text(fields)
    _check_shape(f)
    key = (signing_keys or {}).get(f["source"])
    if key is not None or require_signature:
        if key is None:
            raise SignatureError(f"no signing key configured for source {f['source'][:64]!r}")
        if not verify_fields(f, key):
            raise SignatureError("signature missing or does not match the envelope")
    ref = f.get("ref", "false")
    if ref not in ("true", "false"):
        raise EnvelopeError("must be 'true' or 'false'", field="ref")
    try:
        occurred = dt.datetime.fromisoformat(f["occurred_at"])
    except ValueError:
        raise EnvelopeError("must be an RFC 3339 timestamp", field="occurred_at") from None
    data = {
        "event_id": f["event_id"],
        "source": f["source"],
        "entity": f["entity"],
        "key": f["key"],
        "op": f["op"],
        "version": int(f["version"]),
        "occurred_at": occurred,
        "payload": _payload(_raw_payload(fields, f), max_payload_bytes) if "payload" in f else None,
        "ref": ref == "true",
        "trace_id": f.get("trace_id"),
        "sig": f.get("sig"),
    }
    try:
        return ChangeEvent.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"]) or "envelope"
        raise EnvelopeError(err["msg"], field=loc) from None
