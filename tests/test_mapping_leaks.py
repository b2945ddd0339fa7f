"""Error text never quotes a secret value, for any column type (coercion messages included).

A `MappingError` reaches logs and dead letters. For a non-secret column it ends with
`(value ...)` (short, objects and arrays described) so operators can see what was wrong;
for a secret column the value appears nowhere in it: neither in that suffix nor inside
the coercer's own message (an enum label check or an integer range once quoted it).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualsync.schema.mapping import MappingError
from dualsync.schema.mapping.build import compile_mapping
from dualsync.schema.mapping.model import MappingFileModel

#: column type -> extra column options (besides `from` and `type`)
TYPES: dict[str, dict[str, Any]] = {
    "text": {}, "objectid": {}, "smallint": {}, "int": {}, "bigint": {}, "numeric": {},
    "float": {}, "bool": {}, "timestamptz": {}, "date": {}, "time": {}, "uuid": {},
    "inet": {}, "jsonb": {}, "text[]": {}, "enum": {"enum": "mood", "values": ["happy"]},
    "ref": {"entity": "counted"}, "vector": {"dim": 2},
    "uuid_ref": {"type": "ref", "entity": "uuided"},
    "long_text": {"type": "text", "max_length": 4}, "bytea": {},
    "base64": {"type": "bytea", "encoding": "base64"},
    "hex": {"type": "bytea", "encoding": "hex"},
    "epoch_s": {"type": "timestamptz", "epoch": "s"},
    "berlin": {"type": "timestamptz", "naive_zone": "Europe/Berlin"},
}  # fmt: skip


def _name(kind: str) -> str:
    return kind.replace("[]", "_array")


def _columns(secret: bool) -> dict[str, Any]:
    cols = {}
    for kind, opts in TYPES.items():
        spec = {"from": _name(kind), "type": kind, **opts}
        cols[_name(kind)] = {**spec, "secret": True} if secret else spec
    return cols


def _entities() -> dict[str, Any]:
    return {
        "plain": {"table": "plain", "key": {"column": "id"}, "columns": _columns(False)},
        "hidden": {"table": "hidden", "key": {"column": "id"}, "columns": _columns(True)},
        "counted": {"table": "counted", "key": {"column": "id", "strategy": "int"}},
        "uuided": {"table": "uuided", "key": {"column": "id", "strategy": "uuid"}},
    }


MS = compile_mapping(
    MappingFileModel.model_validate({"version": 1, "app": "leak", "entities": _entities()}),
    Path("<memory>"),
    {},
)

# A needle no message, entity, field or column name contains by chance.
needles = st.text(string.ascii_letters + string.digits, min_size=10, max_size=40).map(
    lambda s: "Zq" + s
)
huge = st.integers(10**20, 10**40)  # beyond every integer range, and long enough to spot


#: kind -> a value a column of that kind refuses, made from (needle, huge integer)
FAILING: dict[str, Callable[[str, int], Any]] = {
    "smallint": lambda _s, n: n, "int": lambda _s, n: n, "bigint": lambda _s, n: n,
    "text": lambda s, _n: s + "\x00",
    "long_text": lambda s, _n: s,  # longer than max_length 4
    "jsonb": lambda s, _n: {"k": s + "\x00"},
    "text[]": lambda s, _n: [s, s + "\x00"],
    "vector": lambda s, _n: [s, s],
    "base64": lambda s, _n: s + "!",
    "berlin": lambda _s, _n: "2024-03-31 02:30:00",  # skipped by the clocks in Berlin
}  # fmt: skip


def failing(kind: str, needle: str, n: int) -> tuple[Any, str]:
    """A value a column of `kind` refuses, and the text that must not leak."""
    # anything else: the needle is not a label, number, date, address, UUID, key ...
    value = FAILING[kind](needle, n) if kind in FAILING else needle
    leak = {"smallint": str(n), "int": str(n), "bigint": str(n), "berlin": "2024-03-31"}
    return value, leak.get(kind, needle)


@settings(max_examples=30, deadline=None)
@given(needles, huge)
@pytest.mark.parametrize("kind", sorted(TYPES))
def test_a_secret_value_never_appears_in_the_error(kind: str, needle: str, n: int) -> None:
    value, leak = failing(kind, needle, n)
    col = _name(kind)
    with pytest.raises(MappingError) as err:
        MS.entity("hidden").to_rows("k1", {col: value})
    text = str(err.value)
    assert (err.value.entity, err.value.field) == ("hidden", col)
    assert f"-> column {col} " in text  # the column is named ...
    assert leak not in text  # ... its value is not
    assert "(value " not in text


@settings(max_examples=30, deadline=None)
@given(needles, huge)
@pytest.mark.parametrize("kind", sorted(TYPES))
def test_a_plain_value_is_shown_short(kind: str, needle: str, n: int) -> None:
    value, _ = failing(kind, needle, n)
    col = _name(kind)
    with pytest.raises(MappingError) as err:
        MS.entity("plain").to_rows("k1", {col: value})
    text = str(err.value)
    if isinstance(value, dict):
        assert text.endswith(f"(value <object with {len(value)} keys>)")
    elif isinstance(value, list):
        assert text.endswith(f"(value <array of {len(value)} items>)")
    else:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        assert text.endswith(f"(value {shown})")
        assert text.count(repr(value)[:77]) == 1  # once: in the suffix, not in the message


def test_a_child_field_named_secret_by_its_path_is_never_quoted() -> None:
    """`secret: [items.pin]` marks the child column fed from `pin` inside `items`."""
    model = MappingFileModel.model_validate({
        "version": 1, "app": "leak", "entities": {"orders": {
            "table": "orders", "key": {"column": "id"}, "secret": ["items.pin"],
            "children": [{"table": "items", "from": "items", "parent_column": "order_id",
                          "order_column": "pos",
                          "columns": {"pin": {"from": "pin", "type": "int"}}}],
        }},
    })  # fmt: skip
    ms = compile_mapping(model, Path("<memory>"), {})
    [child] = ms.entity("orders").children
    assert child.columns[0].secret
    with pytest.raises(MappingError) as err:
        ms.entity("orders").to_rows("o1", {"items": [{"pin": "Zq31337secret"}]})
    assert "Zq31337secret" not in str(err.value)
