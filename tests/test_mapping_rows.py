"""Mapping behaviour that is easy to get subtly wrong: child keys, composite keys, jsonb,
error text that must not leak, options that must not be silently ignored."""

from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualsync.schema.mapping import MappingError, MappingFileError, load_mapping
from dualsync.schema.mapping.coerce import CoercionError, json_safe, to_jsonb
from dualsync.schema.migrate import parse_file

MAPPING = """
version: 1
app: t
entities:
  threads:
    table: threads
    key: {column: id, strategy: uuid5}
    columns:
      details: {from: details, type: jsonb}
      title:   {from: title, type: text}
    children:
      - table: messages
        from: messages
        parent_column: thread_id
        key: {column: id, from: $index, strategy: uuid5}
        order_column: seq
        columns:
          body: {from: body, type: text}
  tokens:
    table: tokens
    key: {columns: [user_id, name], separator: ":"}
    columns:
      token: {from: token, type: text, secret: true}
  sessions:
    table: sessions
    key: {column: id, strategy: uuid}
    columns:
      data: {from: data, type: jsonb}
"""


def _load(tmp_path: Path, text: str = MAPPING) -> Any:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_mapping(path)


def test_index_child_keys_are_unique_across_parents(tmp_path: Path) -> None:
    em = _load(tmp_path).entity("threads")
    doc = {"messages": [{"body": "a"}, {"body": "b"}]}
    first = em.to_rows("t1", doc).children["messages"]
    second = em.to_rows("t2", doc).children["messages"]
    ids = [r[1] for r in first + second]
    assert len(set(ids)) == 4  # position 0 of t1 is not position 0 of t2
    assert em.to_rows("t1", doc).children["messages"] == first  # ... and stable on re-runs
    assert [r[2] for r in first] == [0, 1]


def test_composite_key_parts_must_be_present(tmp_path: Path) -> None:
    em = _load(tmp_path).entity("tokens")
    assert em.translate_key("123:bot") == ("123", "bot")
    for bad in ("123:", ":bot", "123", "1:2:3"):
        with pytest.raises(MappingError, match="2 non-empty parts"):
            em.translate_key(bad)


def test_uuid_strategy_keeps_the_legacy_uuid(tmp_path: Path) -> None:
    em = _load(tmp_path).entity("sessions")
    k = uuid.uuid4()
    assert em.translate_key(str(k)) == (k,)
    with pytest.raises(MappingError, match="is not a UUID"):
        em.translate_key("not-a-uuid")


def test_errors_describe_objects_instead_of_quoting_them(tmp_path: Path) -> None:
    em = _load(tmp_path).entity("threads")
    doc = {"title": {"email": "ana@example.com", "phone": "+1 555 0100"}}
    with pytest.raises(MappingError) as err:
        em.to_rows("t1", doc)
    assert "ana@example.com" not in str(err.value)
    assert "<object with 2 keys>" in str(err.value)


def test_secret_columns_are_redacted_in_errors(tmp_path: Path) -> None:
    em = _load(tmp_path).entity("tokens")
    with pytest.raises(MappingError) as err:
        em.to_rows("1:bot", {"token": "hunter2\x00"})
    assert "hunter2" not in str(err.value)


def test_values_on_a_non_enum_column_is_an_error(tmp_path: Path) -> None:
    bad = MAPPING.replace(
        "title:   {from: title, type: text}",
        "title:   {from: title, type: text, values: [a, b]}",
    )
    with pytest.raises(MappingFileError, match="apply only to `type: enum`"):
        _load(tmp_path, bad)


def test_concurrently_in_a_comment_keeps_the_transaction(tmp_path: Path) -> None:
    header = "-- Purpose: p\n-- Ticket: n/a\n-- Reversible: yes\n-- Rollback: drop\n"
    commented = tmp_path / "20250101000000_commented.sql"
    commented.write_text(
        header
        + "-- not concurrently: tiny table\ncreate index i on t (a);\n-- down\ndrop index i;\n"
    )
    real = tmp_path / "20250101000001_real.sql"
    real.write_text(header + "create index concurrently j on t (a);\n-- down\ndrop index j;\n")
    assert parse_file("t", commented).transactional
    assert not parse_file("t", real).transactional


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


def _dumped(value: Any) -> Any:
    wrapper = to_jsonb(value)
    data = wrapper.dumps(wrapper.obj) if wrapper.dumps else json.dumps(wrapper.obj)
    return json.loads(data)


@given(json_values)
@settings(max_examples=300, deadline=None)
def test_jsonb_fast_path_writes_what_the_exact_walk_writes(value: Any) -> None:
    """orjson's output is used only where it cannot differ from json_safe's."""
    try:
        exact = json_safe(value)
    except CoercionError:
        with pytest.raises(CoercionError):
            to_jsonb(value)
        return
    got = _dumped(value)
    assert got == json.loads(json.dumps(exact))
    assert not any(isinstance(x, float) and not math.isfinite(x) for x in _leaves(got))


def _leaves(v: Any) -> list[Any]:
    if isinstance(v, dict):
        return [x for item in v.values() for x in _leaves(item)]
    if isinstance(v, list):
        return [x for item in v for x in _leaves(item)]
    return [v]


def test_jsonb_refuses_nul_and_surrogates_on_both_paths() -> None:
    for bad in ({"a": "x\x00y"}, {"a\x00": 1}, {"a": "\ud800"}, ["\udfff"]):
        with pytest.raises(CoercionError):
            to_jsonb(bad)


def test_secret_looking_child_fields_are_secret(tmp_path: Path) -> None:
    text = MAPPING.replace(
        "          body: {from: body, type: text}",
        "          body: {from: body, type: text}\n          pw: {from: password, type: text}",
    )
    em = _load(tmp_path, text).entity("threads")
    [child] = em.children
    assert [c.secret for c in child.columns] == [False, True]
    assert "password" in em.secret_fields


def test_inet_columns_parse_addresses(tmp_path: Path) -> None:
    text = MAPPING.replace(
        "      data: {from: data, type: jsonb}",
        "      data: {from: data, type: jsonb}\n      ip: {from: ip, type: inet}",
    )
    em = _load(tmp_path, text).entity("sessions")
    key = str(uuid.uuid4())
    assert str(em.to_rows(key, {"ip": "2001:db8::1"}).values[2]) == "2001:db8::1"
    assert str(em.to_rows(key, {"ip": "10.0.0.0/8"}).values[2]) == "10.0.0.0/8"
    with pytest.raises(MappingError, match="not an IPv4 or IPv6 address"):
        em.to_rows(key, {"ip": "10.0.0.300"})
