"""The hot path's envelope check returns what `decode_fields` returns, and raises what it raises.

`decode_event` builds the event without pydantic when the envelope is plainly valid and
hands everything else to `decode_fields`: a difference between the two would let an
invalid event through, dead-letter a valid one, or change a dead letter's reason or
message. Differential tests on generated stream entries, valid and invalid, near every
rule's boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualsync.schema import EnvelopeError, build_fields, decode_fields
from dualsync.schema.fastcheck import Event, decode_event

_ID_CHARS = "abcXYZ019_.:-"
_ids = st.one_of(
    st.text(_ID_CHARS, min_size=1, max_size=12),
    st.sampled_from([127, 128, 129]).map(lambda n: "a" * n),
    st.text(max_size=6),  # anything: unicode, spaces, empty, NUL
    st.text(_ID_CHARS, min_size=1, max_size=6).map(lambda s: s + "\n"),
)
_entities = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_]{0,62}", fullmatch=True),
    st.text("az09_A-", max_size=66),
    st.just("users\n"),
)
_keys = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from([511, 512, 513]).map(lambda n: "ç" + "k" * (n - 1)),
    st.sampled_from(["", "a\x00b", "\ud800"]),
)
_versions = st.one_of(
    st.integers(min_value=0, max_value=2**64).map(str),
    st.sampled_from(["9223372036854775807", "9223372036854775808", "-1", "1.0", "", "٣", " 7"]),
)
_times = st.sampled_from(
    [
        "2024-05-06T07:08:09Z",
        "2024-05-06T07:08:09.123456+02:00",
        "2024-05-06T07:08:09",  # no offset: the model refuses it
        "2024-05-06",
        "yesterday",
        "2024-05-06T07:08:09Z\x00",
    ]
)
_payloads = st.sampled_from(
    [
        '{"a":1}',
        "{}",
        '{"a":"é","b":[1,{"c":null}]}',
        '{"n":12345678901234567890123}',
        '{"d":{"$date":"2024-01-01T00:00:00Z"}}',
        '{"d":{"$numberDecimal":"x"}}',
        '{"p":"C:\\\\u0000"}',
        '{"p":"\\u0000"}',
        "[1]",
        "nope",
        "",
        '{"a":1}\x00',
        '{"a":"\ud800"}',  # an encoded surrogate: not UTF-8
        '{"n":12345678901234567890123,"a":"\ud800"}',  # the same, for the stdlib parser
        '{"a":"\ud7ff\ue000"}',  # ED 9F BF: valid UTF-8 with an ED byte
        "x" * 300,
    ]
)
_optional = {
    "payload": _payloads,
    "ref": st.sampled_from(["true", "false", "yes"]),
    "schema_version": st.sampled_from(["1", "2"]),
    "trace_id": st.sampled_from(["t-1", "t\x00"]),
    "sig": st.sampled_from(["0" * 64, "zz"]),
    "extra": st.just("x"),
}


_required = {
    "event_id": _ids,
    "source": st.one_of(_ids, st.just("signed-app")),
    "entity": _entities,
    "key": _keys,
    "op": st.sampled_from(["upsert", "delete", "UPSERT"]),
    "version": _versions,
    "occurred_at": _times,
}
_VALID = {
    "event_id": "e-1",
    "source": "app",
    "entity": "users",
    "key": "u1",
    "version": "3",
    "occurred_at": "2024-05-06T07:08:09Z",
}


@st.composite
def _entries(draw: st.DrawFn) -> dict[bytes, bytes]:
    """A valid envelope (upsert or delete, with or without payload and options), then up
    to two fields replaced by generated values, valid or not, and maybe one dropped."""
    fields = dict(_VALID, op=draw(st.sampled_from(["upsert", "delete"])))
    for name in draw(st.sets(st.sampled_from(sorted(_optional)), max_size=3)):
        fields[name] = draw(_optional[name])
    for name in draw(st.sets(st.sampled_from(sorted(_required)), max_size=2)):
        fields[name] = draw(_required[name])
    if draw(st.integers(0, 9)) == 0:
        del fields[draw(st.sampled_from(sorted(fields)))]
    raw = {k.encode(): v.encode("utf-8", "surrogatepass") for k, v in fields.items()}
    if draw(st.integers(0, 9)) == 0 and b"key" in raw:
        raw[b"key"] += b"\xff"  # not UTF-8
    return raw


def _outcome(fn: Any, raw: Mapping[bytes, bytes], **kw: Any) -> dict[str, Any] | tuple[str, ...]:
    try:
        ev = fn(raw, **kw)
    except EnvelopeError as exc:
        return ("error", type(exc).__name__, str(exc), exc.field, exc.reason)
    except Exception as exc:  # noqa: BLE001 - whatever escapes must escape from both
        return ("unexpected", type(exc).__name__, str(exc))
    return {name: getattr(ev, name) for name in Event._fields}


@settings(max_examples=1500, deadline=None)
@given(_entries(), st.sampled_from([64, 1 << 20]), st.booleans())
def test_decode_event_agrees_with_decode_fields(
    raw: dict[bytes, bytes], max_bytes: int, signed: bool
) -> None:
    kw: dict[str, Any] = {"max_payload_bytes": max_bytes}
    if signed:
        kw["signing_keys"] = {"signed-app": b"k" * 32}
    assert _outcome(decode_event, raw, **kw) == _outcome(decode_fields, raw, **kw)


def test_signed_events_are_checked_on_the_hot_path_too() -> None:
    key = b"k" * 32
    fields = build_fields(
        event_id="e-1", source="signed-app", entity="users", key="u1", op="upsert",
        version=3, occurred_at="2024-05-06T07:08:09Z", payload_json='{"a":1}', sign_key=key,
    )  # fmt: skip
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    assert decode_event(raw, signing_keys={"signed-app": key}).payload == {"a": 1}
    raw[b"payload"] = b'{"a":2}'
    with pytest.raises(EnvelopeError, match="signature"):
        decode_event(raw, signing_keys={"signed-app": key})
    with pytest.raises(EnvelopeError, match="no signing key"):
        decode_event(raw, require_signature=True)


def test_a_valid_event_decodes_to_the_models_values() -> None:
    fields = build_fields(
        event_id="0190c1de-0000-7000-8000-000000000001", source="astro-api", entity="users",
        key="5f1d", op="upsert", version=7, occurred_at="2024-05-06T07:08:09.123456Z",
        payload_json='{"when":{"$date":"2024-01-01T00:00:00Z"},"n":1}', trace_id="t",
    )  # fmt: skip
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    want = decode_fields(raw)
    got = decode_event(raw)
    assert got == Event(
        want.event_id, want.source, want.entity, want.key, want.op, want.version,
        want.occurred_at, want.payload, want.ref, want.trace_id, want.sig,
    )  # fmt: skip


def test_a_bad_number_decimal_is_invalid_json_not_a_crash() -> None:
    fields = build_fields(
        event_id="e-1", source="app", entity="users", key="u1", op="upsert", version=1,
        occurred_at="2024-05-06T07:08:09Z", payload_json='{"d":{"$numberDecimal":"x"}}',
    )  # fmt: skip
    raw = {k.encode(): v.encode() for k, v in fields.items()}
    for decode in (decode_fields, decode_event):
        with pytest.raises(EnvelopeError, match="invalid Extended JSON value") as info:
            decode(raw)
        assert info.value.reason == "invalid_json"
