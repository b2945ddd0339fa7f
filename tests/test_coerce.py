"""Property tests for every coercion, and round trips through Postgres where exactness matters.

The rule under test (coerce.py): a value is written exactly (no float detour, UTC for
every instant) or refused with `CoercionError`; `EntityMapping.to_rows` turns a refusal
into a `MappingError` naming entity, key, field and value, with secret values redacted.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import string
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from bson import Decimal128, ObjectId
from hypothesis import example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from dualsync.redact import REDACTED
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping import MappingError
from dualsync.schema.mapping.build import compile_mapping
from dualsync.schema.mapping.coerce import (
    COERCERS,
    CoercionError,
    EnumDomain,
    json_safe,
    to_jsonb,
    vector_coercer,
)
from dualsync.schema.mapping.model import MappingFileModel

C = COERCERS
F = TypeVar("F", bound=Callable[..., None])
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
RANGES = {"smallint": 2**15, "int": 2**31, "bigint": 2**63}
DB = settings(max_examples=40, deadline=None)  # round trips: modest, never timed
PURE = settings(deadline=None)

surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
clean_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
naive = st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31))
utc_datetimes = naive.map(lambda d: d.replace(tzinfo=dt.UTC))
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
millis = st.integers(-62135596800000, 253402300799999)  # 0001-01-01 .. 9999-12-31
EDGES = [  # before 1970, around 2038 (32-bit time_t), and far out
    dt.datetime(1, 1, 2), dt.datetime(1900, 1, 1), dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2038, 1, 19, 3, 14, 8), dt.datetime(2262, 4, 12), dt.datetime(9998, 12, 31),
]  # fmt: skip


def with_edges(*more: Any) -> Callable[[F], F]:
    """Always try the edge dates (with `more` as the other arguments)."""

    def add(test: F) -> F:
        for d in EDGES:
            test = example(d, *more)(test)
        return test

    return add


def decimal128s() -> st.SearchStrategy[Decimal]:
    """Full-precision Decimal128 values: 34 significant digits, any exponent it allows."""
    return st.builds(
        lambda sign, coeff, exp: Decimal((sign, tuple(map(int, str(coeff))), exp)),
        st.integers(0, 1), st.integers(10**33, 10**34 - 1), st.integers(-6176, 6111),
    )  # fmt: skip


@pytest.fixture(scope="module")
def db(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """One connection with a temp table holding one column per coerced type."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("set timezone = 'America/New_York'")  # instants must not depend on it
        conn.execute(
            "create temp table rt (n numeric, ts timestamptz, d date, t time, j jsonb,"
            " a text[], x text, i2 smallint, i4 integer, i8 bigint, f float8, b boolean, u uuid,"
            " ip inet)"
        )
        yield conn


def roundtrip(conn: psycopg.Connection[Any], column: str, value: Any, out: str = "") -> Any:
    """Store `value` in a column of that type and read back what Postgres kept."""
    col = sql.Identifier(column)
    query = sql.SQL("insert into rt ({}) values (%s) returning {}{}").format(col, col, sql.SQL(out))
    return conn.execute(query, (value,)).fetchone()[0]  # type: ignore[index]  # select always returns a row


def exact_json(text: str) -> Any:
    """JSON with every number as a Decimal: jsonb keeps numbers as the exact decimals written."""
    return json.loads(text, parse_int=Decimal, parse_float=Decimal)


@PURE
@given(st.text(st.characters(exclude_categories=["Cs"])) | st.lists(surrogates).map("".join))
def test_text_refuses_nul_and_lone_surrogates(s: str) -> None:
    if "\x00" in s or any(0xD800 <= ord(c) <= 0xDFFF for c in s):
        with pytest.raises(CoercionError, match=r"NUL|surrogate"):
            C["text"](s)
    else:
        assert C["text"](s) == s


@PURE
@given(st.one_of(st.builds(ObjectId), st.uuids(), st.integers(), st.decimals(allow_nan=False)))
def test_text_from_scalars(v: Any) -> None:
    assert C["text"](v) == str(v)


@pytest.mark.parametrize("v", [True, 1.5, {"a": 1}, [1], None, b"x"])
def test_text_refuses_other_types(v: Any) -> None:
    with pytest.raises(CoercionError, match="expected text"):
        C["text"](v)


@PURE
@given(st.binary(min_size=12, max_size=12).map(ObjectId))
def test_objectid(oid: ObjectId) -> None:
    assert C["objectid"](oid) == str(oid)
    assert C["objectid"](str(oid).upper()) == str(oid)
    assert C["objectid"]({"$oid": str(oid)}["$oid"]) == str(oid)
    for bad in (str(oid)[:-1], str(oid) + "0", "z" + str(oid)[1:], oid.binary):
        with pytest.raises(CoercionError):
            C["objectid"](bad)


@PURE
@given(st.sampled_from(sorted(RANGES)), st.integers(-(2**70), 2**70))
def test_integer_ranges(kind: str, n: int) -> None:
    limit = RANGES[kind]
    if -limit <= n < limit:
        assert C[kind](n) == n
        assert C[kind](str(n)) == n
        assert C[kind](f" +{n}" if n >= 0 else f" {n} ") == n
        assert C[kind](Decimal(n)) == n
        if abs(n) < 2**53:
            assert C[kind](float(n)) == n
    else:
        with pytest.raises(CoercionError, match="out of range"):
            C[kind](n)


@pytest.mark.parametrize("v", [True, False, 1.5, "1.5", "", "1e3", "0x10", None, [1]])
@pytest.mark.parametrize("kind", sorted(RANGES))
def test_integer_refuses_non_integers(kind: str, v: Any) -> None:
    with pytest.raises(CoercionError):
        C[kind](v)


@pytest.mark.parametrize(("kind", "column"), [("smallint", "i2"), ("int", "i4"), ("bigint", "i8")])
def test_integer_ranges_match_postgres(db: psycopg.Connection[Any], kind: str, column: str) -> None:
    limit = RANGES[kind]
    for n in (-limit, limit - 1):
        assert roundtrip(db, column, C[kind](n)) == n
    for n in (-limit - 1, limit):  # refused before Postgres would refuse them
        with pytest.raises(CoercionError):
            C[kind](n)


@PURE
@given(decimal128s())
def test_numeric_keeps_decimal128_exactly(d: Decimal) -> None:
    wire = str(Decimal128(d))
    for v in (
        Decimal128(wire),
        wire,
        loads_payload(f'{{"x": {{"$numberDecimal": "{wire}"}}}}')["x"],
    ):
        got = C["numeric"](v)
        assert got == d
        assert got.as_tuple().digits == d.as_tuple().digits  # all 34 digits, no float detour


@DB
@given(decimal128s())
@example(Decimal("-0"))
@example(Decimal("1E+6144"))
@example(Decimal("1E-6176"))
def test_numeric_roundtrips_through_postgres(db: psycopg.Connection[Any], d: Decimal) -> None:
    assert roundtrip(db, "n", C["numeric"](Decimal128(d))) == d


@PURE
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numeric_from_float_is_its_shortest_repr(f: float) -> None:
    got = C["numeric"](f)
    assert got == Decimal(repr(f))
    assert float(got) == f


@pytest.mark.parametrize("v", [True, "abc", "NaN", float("nan"), float("inf"), "Infinity", None])
def test_numeric_refuses(v: Any) -> None:
    with pytest.raises(CoercionError):
        C["numeric"](v)


@PURE
@given(st.floats(allow_nan=False) | st.integers(-(2**60), 2**60))
def test_float(v: float) -> None:
    assert C["float"](v) == float(v)
    assert C["float"](repr(v)) == float(v)
    assert C["float"](Decimal(repr(v))) == float(v)


@pytest.mark.parametrize("v", [True, "abc", None, [1.0]])
def test_float_refuses(v: Any) -> None:
    with pytest.raises(CoercionError):
        C["float"](v)


@pytest.mark.parametrize(
    ("v", "want"),
    [(True, True), (False, False), ("true", True), ("false", False), ("1", True), ("0", False),
     (1, True), (0, False), (" TRUE ", True), ("False", False), ("yes", True), ("f", False)],
)  # fmt: skip
def test_bool(v: Any, want: bool) -> None:
    assert C["bool"](v) is want


@PURE
@given(st.integers().filter(lambda n: n not in (0, 1)) | st.floats() | st.text())
def test_bool_refuses_everything_else(v: Any) -> None:
    if isinstance(v, str) and v.strip().lower() in {
        "true",
        "false",
        "1",
        "0",
        "yes",
        "no",
        "t",
        "f",
    }:
        return
    with pytest.raises(CoercionError):
        C["bool"](v)


@PURE
@given(naive)
@with_edges()
def test_timestamptz_from_extended_json(d: dt.datetime) -> None:
    want = d.replace(tzinfo=dt.UTC)
    relaxed = loads_payload(dumps_payload({"d": want}))["d"]
    assert C["timestamptz"](relaxed) == want
    ms = (want - EPOCH) // dt.timedelta(milliseconds=1)
    canonical = loads_payload(f'{{"d": {{"$date": {{"$numberLong": "{ms}"}}}}}}')["d"]
    assert C["timestamptz"](canonical) == EPOCH + dt.timedelta(milliseconds=ms)


@PURE
@given(millis)
def test_timestamptz_from_epoch_millis(ms: int) -> None:
    got = C["timestamptz"](ms)
    assert got == EPOCH + dt.timedelta(milliseconds=ms)
    assert got.utcoffset() == dt.timedelta(0)


@PURE
@given(naive, offsets)
@with_edges(dt.timezone(dt.timedelta(hours=-9, minutes=-30)))
def test_timestamptz_from_iso_8601(d: dt.datetime, tz: dt.timezone) -> None:
    got = C["timestamptz"](d.replace(tzinfo=tz).isoformat())
    assert got == d.replace(tzinfo=tz)  # the same instant ...
    assert got.tzinfo is dt.UTC  # ... in UTC
    assert C["timestamptz"](d.isoformat()) == d.replace(tzinfo=dt.UTC)  # no offset: UTC
    assert C["timestamptz"](d.isoformat() + "Z") == d.replace(tzinfo=dt.UTC)


@DB
@given(utc_datetimes)
@with_edges()
def test_timestamptz_roundtrips_through_postgres(
    db: psycopg.Connection[Any], d: dt.datetime
) -> None:
    want = d.replace(tzinfo=dt.UTC)
    assert roundtrip(db, "ts", C["timestamptz"](want.isoformat())) == want


@pytest.mark.parametrize("v", ["yesterday", "2024-13-01T00:00:00", True, None, [2024]])
def test_timestamptz_refuses(v: Any) -> None:
    with pytest.raises(CoercionError):
        C["timestamptz"](v)


@DB
@given(naive, offsets)
def test_date(db: psycopg.Connection[Any], d: dt.datetime, tz: dt.timezone) -> None:
    day = d.date()
    assert C["date"](day) == day
    assert C["date"](day.isoformat()) == day
    aware = d.replace(tzinfo=tz)
    assert C["date"](aware) == aware.astimezone(dt.UTC).date()  # the UTC day of an instant
    assert C["date"](aware.isoformat()) == aware.astimezone(dt.UTC).date()
    assert roundtrip(db, "d", C["date"](day.isoformat())) == day


@DB
@given(st.times())
def test_time(db: psycopg.Connection[Any], t: dt.time) -> None:
    assert C["time"](t) == t
    assert C["time"](t.isoformat()) == t
    assert roundtrip(db, "t", C["time"](t.isoformat())) == t


@PURE
@given(st.uuids())
def test_uuid(u: uuid.UUID) -> None:
    for v in (u, str(u), str(u).upper(), u.hex, f"{{{u}}}"):
        assert C["uuid"](v) == u
    for bad in (str(u)[:-1], u.bytes, u.int):
        with pytest.raises(CoercionError):
            C["uuid"](bad)


@DB
@given(st.ip_addresses(), st.booleans())
def test_inet(db: psycopg.Connection[Any], ip: Any, with_prefix: bool) -> None:
    value: Any = ipaddress.ip_interface(f"{ip}/{ip.max_prefixlen - 1}") if with_prefix else ip
    assert C["inet"](value) == value
    assert C["inet"](f" {value} ") == value
    assert roundtrip(db, "ip", C["inet"](str(value))) == value
    for bad in ("10.0.0.256", "localhost", f"{ip}/200", int(ip), None):
        with pytest.raises(CoercionError):
            C["inet"](bad)


json_leaves = (
    st.none() | st.booleans() | st.integers() | clean_text
    | st.floats(allow_nan=False, allow_infinity=False) | st.decimals(allow_nan=False)
    | utc_datetimes | st.uuids() | st.binary(max_size=8) | st.builds(ObjectId)
)  # fmt: skip
documents = st.recursive(
    json_leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(clean_text, c, max_size=4)
)


@DB
@given(documents)
def test_jsonb_roundtrips_through_postgres(db: psycopg.Connection[Any], doc: Any) -> None:
    safe = json_safe(doc)
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe  # plain JSON
    assert json_safe(safe) == safe
    stored = roundtrip(db, "j", to_jsonb(doc), "::text")
    assert exact_json(stored) == exact_json(json.dumps(safe))


@PURE
@given(documents, st.sampled_from(["\x00", "\ud800", float("nan"), float("inf"), {1, 2}]))
def test_jsonb_refuses_what_postgres_cannot_store(doc: Any, poison: Any) -> None:
    for bad in ({"k": [doc, poison]}, [{"ok": doc, "x": poison}]):
        with pytest.raises(CoercionError):
            json_safe(bad)
        with pytest.raises(CoercionError):
            to_jsonb(bad)
    if isinstance(poison, str):
        with pytest.raises(CoercionError):
            json_safe({poison: doc})  # keys too


@DB
@given(st.lists(clean_text, max_size=5))
def test_text_array(db: psycopg.Connection[Any], items: list[str]) -> None:
    assert C["text[]"](items) == items
    assert roundtrip(db, "a", C["text[]"](items)) == items
    with pytest.raises(CoercionError):
        C["text[]"]([*items, "a\x00b"])
    with pytest.raises(CoercionError):
        C["text[]"](",".join(items))


@PURE
@given(st.integers(1, 16).flatmap(lambda n: st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n)))
def test_vector_dimensions(v: list[float]) -> None:
    assert vector_coercer(len(v))(v) == v
    with pytest.raises(CoercionError, match=f"vector has {len(v) + 1} dimensions, the column"):
        vector_coercer(len(v))([*v, 0.0])
    with pytest.raises(CoercionError, match="NaN"):
        vector_coercer(len(v))([*v[:-1], float("nan")])


@PURE
@given(st.frozensets(st.text(string.ascii_lowercase, min_size=1), min_size=1), st.text())
def test_enum_check(labels: frozenset[str], v: str) -> None:
    dom = EnumDomain("mood", labels)
    for label in labels:
        assert dom.check(label) == label
    if v not in labels:
        with pytest.raises(CoercionError, match="not a value of enum mood"):
            dom.check(v)
    assert EnumDomain("mood", None).check(v) == v  # unbound: Postgres decides
    with pytest.raises(CoercionError, match="needs a string"):
        dom.check(1)


def test_every_coercion_has_a_property_test() -> None:
    """A new column type needs its own test above before it joins this list."""
    assert set(COERCERS) == {
        "text", "objectid", "smallint", "int", "bigint", "numeric", "float", "bool",
        "timestamptz", "date", "time", "uuid", "inet", "jsonb", "text[]",
        "bytea",  # tests/test_coerce_bytea_length.py
    }  # fmt: skip


@pytest.mark.parametrize(("kind", "v"), [
    ("int", "+-5"), ("int", "\u00b2"), ("float", 10**400), ("timestamptz", float("nan")),
    ("timestamptz", "0001-01-01T00:00:00+01:00"), ("date", "0001-01-01T00:00:00+01:00"),
], ids=["int +-5", "int superscript 2", "float 10**400", "timestamptz nan", "timestamptz year 1",
        "date year 1"])  # fmt: skip
def test_every_refusal_is_a_coercion_error(kind: str, v: Any) -> None:
    with pytest.raises(CoercionError):
        C[kind](v)


PEOPLE = compile_mapping(
    MappingFileModel.model_validate({
        "version": 1, "app": "mem", "entities": {"people": {
            "table": "people", "key": {"column": "id"},
            "columns": {
                "age": {"from": "age", "type": "int"},
                "pin": {"from": "pin", "type": "int", "secret": True},
                "password": {"from": "password", "type": "text"},
                "name": {"from": "name", "type": "text", "nullable": False},
            },
        }},
    }),
    Path("<memory>"), {},
).entity("people")  # fmt: skip
keys = st.text(string.ascii_letters + string.digits, min_size=1, max_size=20)
not_ints = st.text(string.ascii_letters + " -_.", min_size=1).filter(lambda s: s.strip())


@PURE
@given(keys, not_ints)
def test_failure_names_entity_key_field_and_value(key: str, v: str) -> None:
    with pytest.raises(MappingError) as err:
        PEOPLE.to_rows(key, {"name": "x", "age": v})
    assert (err.value.entity, err.value.key, err.value.field) == ("people", key, "age")
    shown = repr(v) if len(repr(v)) <= 80 else repr(v)[:77] + "..."
    assert str(err.value).startswith(f"people {key!r}: field 'age' -> column age (int): ")
    assert str(err.value).endswith(f"(value {shown})")


@PURE
@given(keys, not_ints.map(lambda s: "s3cr3t" + s))
def test_failure_redacts_secret_values(key: str, v: str) -> None:
    for doc, field in (({"pin": v}, "pin"), ({"password": {"plain": v}}, "password")):
        with pytest.raises(MappingError) as err:
            PEOPLE.to_rows(key, {"name": "x", **doc})
        assert (err.value.entity, err.value.key, err.value.field) == ("people", key, field)
        assert v not in str(err.value)
        assert "(value " not in str(err.value)  # a secret column's value is not even redacted
        assert REDACTED not in str(err.value)  # ... it is left out (test_mapping_leaks.py)


def test_missing_required_field_is_named() -> None:
    with pytest.raises(MappingError, match="field 'name' -> column name: missing") as err:
        PEOPLE.to_rows("k1", {"age": 3})
    assert (err.value.entity, err.value.key, err.value.field) == ("people", "k1", "name")
