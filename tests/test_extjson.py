"""Extended JSON v2 and exact JSON round trips of payloads."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest
from bson import ObjectId, json_util
from bson.binary import Binary, UuidRepresentation
from hypothesis import given, settings
from hypothesis import strategies as st

from dualsync.schema.extjson import dumps_payload, loads_payload

# Field names starting with "$" are Extended JSON wrappers by definition (and MongoDB
# refuses them in documents), so arbitrary documents avoid them.
keys = st.text(min_size=0, max_size=20).filter(lambda k: not k.startswith("$"))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=40,
)
documents = st.dictionaries(keys, json_values, max_size=8)


@given(documents)
@settings(max_examples=300, deadline=None)
def test_arbitrary_json_round_trips_exactly(doc: dict[str, Any]) -> None:
    back = loads_payload(dumps_payload(doc))
    assert back == doc
    assert repr(back) == repr(doc)  # same types too: 1 stays int, 1.0 stays float


def test_deep_nesting_and_unicode() -> None:
    deep: Any = "leaf 🌊"
    for i in range(200):
        deep = {f"l{i}": [deep]}
    doc = {"deep": deep, "emoji": "🦈🐠 déjà vu 日本語 עברית", "big": 2**100, "neg": -(2**80)}
    assert loads_payload(dumps_payload(doc)) == doc


def test_every_extended_json_type_decodes() -> None:
    raw = (
        b'{"oid":{"$oid":"5f1d7a8e9b1e8a3c2d4e5f60"},'
        b'"date":{"$date":"2021-03-04T05:06:07.123456Z"},'
        b'"old":{"$date":{"$numberLong":"-2208988800000"}},'
        b'"dec":{"$numberDecimal":"1234567890123456789012345678901.234"},'
        b'"long":{"$numberLong":"9223372036854775807"},'
        b'"dbl":{"$numberDouble":"-Infinity"},'
        b'"bin":{"$binary":{"base64":"AAEC/w==","subType":"00"}},'
        b'"uuid":{"$uuid":"00112233-4455-6677-8899-aabbccddeeff"}}'
    )
    doc = loads_payload(raw)
    assert doc["oid"] == ObjectId("5f1d7a8e9b1e8a3c2d4e5f60")
    assert doc["date"] == dt.datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=dt.UTC)
    assert doc["old"] == dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
    assert doc["dec"] == Decimal("1234567890123456789012345678901.234")
    assert type(doc["long"]) is int
    assert doc["long"] == 2**63 - 1
    assert doc["dbl"] == float("-inf")
    assert doc["bin"] == b"\x00\x01\x02\xff"
    assert doc["uuid"] == uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")


def _fits_decimal128(d: Decimal) -> bool:
    t = d.as_tuple()
    return len(t.digits) <= 34 and isinstance(t.exponent, int) and -6143 <= t.exponent <= 6111


@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.just(dt.UTC),
    ),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(_fits_decimal128),
    st.uuids(),
    st.binary(max_size=64),
)
@settings(max_examples=200, deadline=None)
def test_rich_python_values_round_trip(
    when: dt.datetime, dec: Decimal, uid: uuid.UUID, blob: bytes
) -> None:
    doc = {"when": when, "dec": dec, "uid": uid, "blob": blob, "oid": ObjectId()}
    back = loads_payload(dumps_payload(doc))
    assert back == doc
    assert str(back["dec"]) == str(dec)  # scale kept, not just value


def test_non_finite_floats_keep_their_value() -> None:
    back = loads_payload(dumps_payload({"a": float("inf"), "b": float("-inf"), "c": float("nan")}))
    assert back["a"] == float("inf")
    assert back["b"] == float("-inf")
    assert back["c"] != back["c"]


def test_naive_datetime_is_utc() -> None:
    back = loads_payload(dumps_payload({"t": dt.datetime(2020, 1, 1, 12)}))
    assert back["t"] == dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"a": }', b"\xff\xfe", b'{"d": {"$date": "not a date"}}', b'{"o": {"$oid": "xyz"}}'],
)
def test_invalid_input_is_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"JSON|Extended"):
        loads_payload(raw)


def test_unencodable_type_names_it() -> None:
    with pytest.raises(TypeError, match="complex"):
        dumps_payload({"z": 1j})


def _pymongo(raw: str) -> Any:
    """What pymongo's own parser makes of a payload (subtype 0 as bytes, as ours)."""
    options = json_util.JSONOptions(uuid_representation=UuidRepresentation.STANDARD)
    out = json_util.loads(raw, json_options=options)
    return {k: bytes(v) if isinstance(v, Binary) and v.subtype == 0 else v for k, v in out.items()}


@given(data=st.binary(max_size=300), subtype=st.integers(0, 255), upper=st.booleans())
@settings(max_examples=200, deadline=None)
def test_binary_decodes_as_pymongo_decodes_it(data: bytes, subtype: int, upper: bool) -> None:
    sub = f"{subtype:02x}"
    raw = (
        f'{{"b": {{"$binary": {{"base64": "{base64.b64encode(data).decode()}", '
        f'"subType": "{sub.upper() if upper else sub}"}}}}}}'
    )
    try:
        expected = _pymongo(raw)
    except ValueError:  # a UUID subtype whose bytes are not 16 long
        with pytest.raises(ValueError, match="Extended JSON"):
            loads_payload(raw.encode())
        return
    got = loads_payload(raw.encode())
    assert got == expected
    assert type(got["b"]) is type(expected["b"])
    if hasattr(expected["b"], "subtype"):
        assert got["b"].subtype == expected["b"].subtype


@pytest.mark.parametrize(
    ("b64", "expected"),
    [
        ("aGVs\nbG8=", b"hello"),  # whitespace and newlines are skipped, as the stdlib does
        ("aGVs bG8=", b"hello"),
        ("", b""),
    ],
)
def test_binary_base64_is_read_as_the_stdlib_reads_it(b64: str, expected: bytes) -> None:
    raw = f'{{"b": {{"$binary": {{"base64": {orjson.dumps(b64).decode()}, "subType": "00"}}}}}}'
    assert loads_payload(raw.encode()) == {"b": expected}


@pytest.mark.parametrize(
    "wrapper",
    [
        '{"base64": "aGVsbG8", "subType": "00"}',  # bad padding
        '{"base64": "aGVsbG8=", "subType": "zz"}',  # not hex
        '{"base64": "aGVsbG8=", "subType": ""}',
        '{"base64": "aGVsbG8=", "subType": "000"}',
        '{"base64": 5, "subType": "00"}',
        '{"base64": "aGVsbG8=", "subType": "00", "x": 1}',
        '{"base64": "aGVsbG8="}',
    ],
)
def test_malformed_binary_is_a_value_error(wrapper: str) -> None:
    with pytest.raises(ValueError, match="Extended JSON"):
        loads_payload(f'{{"b": {{"$binary": {wrapper}}}}}'.encode())
