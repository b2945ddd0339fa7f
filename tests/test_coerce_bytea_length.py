"""`bytea` columns (Extended JSON `$binary`, and base64/hex strings when the column says so)
and `text` columns with `max_length:` (a varchar(n)/char(n) limit enforced at decode)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from bson import Binary
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping import MappingError, MappingFileError, load_mapping
from dualsync.schema.mapping.coerce import COERCERS, CoercionError, bytea_coercer, text_coercer

PURE = settings(deadline=None)
DB = settings(max_examples=40, deadline=None)


@PURE
@given(st.binary(max_size=64), st.integers(0, 255))
def test_bytea_from_extended_json(data: bytes, subtype: int) -> None:
    coerce = COERCERS["bytea"]
    wire = dumps_payload({"b": data})  # {"$binary": {"base64": ..., "subType": "00"}}
    assert coerce(loads_payload(wire)["b"]) == data
    assert coerce(Binary(data, subtype)) == data  # any subtype: the bytes themselves
    assert coerce(bytearray(data)) == data
    assert coerce(memoryview(data)) == data
    assert type(coerce(Binary(data, subtype))) is bytes


@PURE
@given(st.uuids())
def test_bytea_from_a_uuid_binary(u: uuid.UUID) -> None:
    # $binary subtype 4 decodes as a UUID: its 16 bytes
    b64 = base64.b64encode(u.bytes).decode()
    wire = f'{{"b": {{"$binary": {{"base64": "{b64}", "subType": "04"}}}}}}'
    assert COERCERS["bytea"](loads_payload(wire)["b"]) == u.bytes


@PURE
@given(st.binary(max_size=64))
def test_bytea_strings_need_an_encoding(data: bytes) -> None:
    b64 = base64.b64encode(data).decode()
    with pytest.raises(CoercionError, match="set `encoding: base64`"):
        COERCERS["bytea"](b64)
    assert bytea_coercer("base64")(b64) == data
    assert bytea_coercer("base64")(base64.urlsafe_b64encode(data).decode().rstrip("=")) == data
    assert bytea_coercer("hex")(data.hex()) == data
    assert bytea_coercer("hex")(data.hex().upper()) == data
    assert bytea_coercer("hex")("\\x" + data.hex()) == data  # PostgreSQL's own hex form
    assert bytea_coercer("base64")(data) == data  # $binary still works


@pytest.mark.parametrize("bad", ["not base64!", "YWJj=x", "a", "YW Jj", "\x00"])
def test_bytea_refuses_bad_base64(bad: str) -> None:
    with pytest.raises(CoercionError, match="not base64"):
        bytea_coercer("base64")(bad)


@pytest.mark.parametrize("bad", ["abc", "zz", "0x00", "\\x0"])
def test_bytea_refuses_bad_hex(bad: str) -> None:
    with pytest.raises(CoercionError, match="not hex"):
        bytea_coercer("hex")(bad)


@pytest.mark.parametrize("bad", [1, 1.5, True, None, [1, 2], {"a": 1}])
def test_bytea_refuses_other_types(bad: Any) -> None:
    with pytest.raises(CoercionError, match="expected binary data"):
        bytea_coercer("base64")(bad)


@pytest.fixture(scope="module")
def db(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("create temp table bt (b bytea, v varchar(5), c char(5))")
        yield conn


@DB
@given(st.binary(max_size=300))
def test_bytea_roundtrips_through_postgres_and_copy(
    db: psycopg.Connection[Any], data: bytes
) -> None:
    value = COERCERS["bytea"](Binary(data, 0))
    assert db.execute("insert into bt (b) values (%s) returning b", (value,)).fetchone() == (data,)
    with db.cursor() as cur:  # the batch apply path stages rows with COPY
        cur.execute("truncate bt")
        with cur.copy("copy bt (b) from stdin") as copy:
            copy.write_row((value,))
        assert cur.execute("select b from bt").fetchall() == [(data,)]


text5 = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=9)


@DB
@given(text5)
def test_max_length_is_what_postgres_enforces(db: psycopg.Connection[Any], s: str) -> None:
    """Accepted exactly when varchar(5) and char(5) accept it, and stored the same."""
    coerce = text_coercer(5)
    for column in ("v", "c"):
        try:
            with db.transaction():
                query = sql.SQL("insert into bt ({c}) values (%s) returning {c}")
                stored = db.execute(query.format(c=sql.Identifier(column)), (s,)).fetchone()
        except psycopg.errors.StringDataRightTruncation:
            with pytest.raises(CoercionError, match="longer than max_length 5"):
                coerce(s)
            continue
        assert stored is not None
        got = coerce(s)
        assert len(got) <= 5
        assert got == stored[0] or (column == "c" and got.ljust(5) == stored[0])


MAPPING = """\
version: 1
app: t
entities:
  users:
    table: users
    key: {column: id}
    columns:
      name: {from: name, type: text, max_length: 8}
      pin: {from: pin, type: text, max_length: 4, secret: true}
      avatar: {from: avatar, type: bytea, encoding: base64}
      raw: {from: raw, type: bytea}
"""


def _load(tmp_path: Path, text: str = MAPPING) -> Any:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_mapping(path)


def test_an_over_long_value_is_a_mapping_error(tmp_path: Path) -> None:
    em = _load(tmp_path).entity("users")
    assert em.to_rows("u1", {"name": "ana", "pin": "1234"}).values[1:3] == ("ana", "1234")
    assert em.pg_types[1:] == ("text", "text", "bytea", "bytea")
    with pytest.raises(MappingError) as err:
        em.to_rows("u1", {"name": "Anastasia Romanova"})
    assert str(err.value) == (
        "users 'u1': field 'name' -> column name (text): 18 characters, longer than "
        "max_length 8: shorten the value at the source, or widen the column and its "
        "max_length together (value 'Anastasia Romanova')"
    )
    assert err.value.field == "name"
    with pytest.raises(MappingError) as err:
        em.to_rows("u1", {"pin": "98765"})
    assert "98765" not in str(err.value)
    assert "column pin (text): 5 characters, longer than max_length 4" in str(err.value)


def test_bytea_columns_decode(tmp_path: Path) -> None:
    em = _load(tmp_path).entity("users")
    payload = loads_payload(dumps_payload({"avatar": "iVBORw0K", "raw": b"\x89PNG"}))
    assert em.to_rows("u1", payload).values[3:] == (b"\x89PNG\r\n", b"\x89PNG")
    with pytest.raises(MappingError, match="column raw \\(bytea\\): expected binary data"):
        em.to_rows("u1", {"raw": "iVBORw0K"})


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{from: name, type: text, max_length: 8}", "{from: name, type: int, max_length: 8}",
         "columns.name.max_length: Value error, `max_length` applies only to `type: text`"),
        ("max_length: 8}", "max_length: 0}", "columns.name.max_length: Input should be greater"),
        ("type: bytea, encoding: base64}", "type: text, encoding: base64}",
         "columns.avatar.encoding: Value error, `encoding` applies only to `type: bytea`"),
        ("encoding: base64}", "encoding: base85}", "columns.avatar.encoding: Input should be"),
    ],
    ids=["max_length on int", "max_length 0", "encoding on text", "unknown encoding"],
)  # fmt: skip
def test_options_are_validated(tmp_path: Path, old: str, new: str, message: str) -> None:
    text = MAPPING.replace(old, new)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if new in ln)
    with pytest.raises(MappingFileError) as err:
        _load(tmp_path, text)
    assert f"m.yaml:{line}: entities.users." in str(err.value)
    assert message in str(err.value)
