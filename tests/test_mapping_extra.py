"""`extra` receives exactly what no column and no child table reads.

A child table's `from:` array is mapped (its rows hold it), so it is not copied into the
parent's jsonb as well: a thread gaining one message must not rewrite the whole thread
into the parent row. A dotted source reads part of a top-level field; `extra` keeps the
rest of that field (and drops it once nothing is left), so nothing is lost and nothing
is stored twice (a secret nested field mapped to a secret column is not copied either).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import orjson
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from dualsync.schema.mapping import EntityMapping, MappingError, load_mapping
from dualsync.schema.mapping.build import compile_mapping
from dualsync.schema.mapping.model import MappingFileModel

MAPPING = """\
version: 1
app: x
entities:
  threads:
    table: threads
    key: {column: id}
    extra: extra
    columns:
      title: {from: title, type: text}
      author: {from: meta.author.name, type: text}
      token: {from: auth.token, type: text, secret: true}
      sealed: {from: sealed, type: jsonb}
    children:
      - table: messages
        from: messages
        parent_column: thread_id
        order_column: seq
        columns:
          body: {from: body, type: text}
      - table: attachments
        from: files.list
        parent_column: thread_id
        order_column: seq
        columns:
          name: {from: name, type: text}
"""


def _load(tmp_path: Path) -> EntityMapping:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING)
    return load_mapping(path).entity("threads")


THREADS = compile_mapping(
    MappingFileModel.model_validate(yaml.safe_load(MAPPING)), Path("<memory>"), {}
).entity("threads")


def _extra(em: EntityMapping, doc: dict[str, Any]) -> Any:
    value = em.to_rows("t1", doc).values[-1]
    if value is None:
        return None
    assert isinstance(value, Jsonb)
    obj = value.obj
    if isinstance(obj, bytes):  # to_jsonb's fast path: serialised once, by orjson
        return orjson.loads(obj)
    return obj


def test_child_arrays_are_not_copied_into_extra(tmp_path: Path) -> None:
    em = _load(tmp_path)
    doc = {"title": "t", "messages": [{"body": "hi"}, {"body": "yo"}], "pinned": True}
    rows = em.to_rows("t1", doc)
    assert rows.children["messages"] == [("t1", 0, "hi"), ("t1", 1, "yo")]
    assert _extra(em, doc) == {"pinned": True}  # not the messages a second time
    assert _extra(em, {"messages": [{"body": "hi"}]}) is None


def test_dotted_sources_keep_the_rest_of_their_field(tmp_path: Path) -> None:
    em = _load(tmp_path)
    doc = {
        "meta": {"author": {"name": "ana", "id": 7}, "lang": "pt"},
        "auth": {"token": "s3cr3t"},
        "files": {"list": [{"name": "a.pdf"}], "quota": 3},
    }
    rows = em.to_rows("t1", doc)
    assert rows.children["attachments"] == [("t1", 0, "a.pdf")]
    assert _extra(em, doc) == {"meta": {"author": {"id": 7}, "lang": "pt"}, "files": {"quota": 3}}
    # A field whose mapped paths found no object there is unread: it is kept whole.
    assert _extra(em, {"meta": "free text", "auth": ["x"]}) == {"meta": "free text", "auth": ["x"]}


field_names = st.text(string.ascii_lowercase, min_size=1, max_size=6)
leaves = st.none() | st.integers(-9, 9) | st.text(string.ascii_letters, max_size=4)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(field_names, inner, max_size=3),
    max_leaves=8,
)
# Documents the mapping accepts: mapped paths hold what their columns take, any shape else.
objects = st.dictionaries(st.sampled_from(["author", "name", "lang", "token", "list"]), values)
documents = st.fixed_dictionaries(
    {},
    optional={
        "title": leaves, "sealed": values, "other": values, "pinned": values,
        "meta": objects | values, "auth": objects | values,
        "files": st.fixed_dictionaries(
            {}, optional={"list": st.lists(st.fixed_dictionaries({"name": leaves})),
                          "quota": values}
        ),
        "messages": st.lists(st.fixed_dictionaries({"body": leaves}), max_size=3),
    },
)  # fmt: skip


def _paths(v: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every leaf path of a document (objects descended into, anything else a leaf)."""
    if isinstance(v, dict) and v:
        return {p for k, x in v.items() for p in _paths(x, (*prefix, k))}
    return {prefix}


@settings(max_examples=300, deadline=None)
@given(documents)
def test_every_leaf_is_read_once(doc: dict[str, Any]) -> None:
    """A leaf is in `extra` exactly when no column or child table reads it (or a parent)."""
    em = THREADS
    read = {("title",), ("meta", "author", "name"), ("auth", "token"), ("sealed",),
            ("messages",), ("files", "list")}  # fmt: skip
    try:
        extra = _extra(em, doc) or {}
    except MappingError:  # meta.author.name or auth.token holding an object: not text
        assume(False)
    for path in _paths(doc):
        covered = any(path[: len(r)] == r for r in read)
        in_extra = path in _paths(extra) if path else False
        if not covered and _reaches(doc, path):
            assert in_extra, (path, extra)
        if covered:
            assert not _has(extra, path), (path, extra)


def _reaches(doc: Any, path: tuple[str, ...]) -> bool:
    """False for an empty object left once its mapped parts are taken out (not kept)."""
    node = doc
    for p in path:
        node = node[p]
    return not (isinstance(node, dict) and not node)


def _has(doc: Any, path: tuple[str, ...]) -> bool:
    node = doc
    for p in path:
        if not isinstance(node, dict) or p not in node:
            return False
        node = node[p]
    return True
