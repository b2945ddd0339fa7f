"""`mappings check` for varchar(n)/char(n) lengths and bytea columns.

A `text` column may declare `max_length:` (enforced at decode). The check compares it
with the live column's declared length: a mapping that lets longer values through than
the column stores is an error (they would fail in PostgreSQL, batch by batch); one that
refuses values the column could store is a warning. Without `max_length` a text value
into varchar(n) is fine, as before (PostgreSQL decides).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from dualsync.schema.mapping import load_mapping
from dualsync.schema.mapping.check import Problem, check_mapping, schemas_of
from dualsync.schema.mapping.introspect import introspect

SCHEMA = """
create schema mt;
create domain mt.short as varchar(6);
create table mt.t (
  id text primary key,
  name varchar(8),
  code char(4),
  note text,
  nick mt.short,
  blob bytea
);
"""

GOOD = """\
version: 1
app: mt
schema: mt
entities:
  t:
    table: t
    key: {column: id}
    columns:
      name: {from: name, type: text, max_length: 8}
      code: {from: code, type: text, max_length: 4}
      note: {from: note, type: text}
      nick: {from: nick, type: text, max_length: 6}
      blob: {from: blob, type: bytea, encoding: base64}
"""


@pytest.fixture(scope="module")
def types_db(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return pg_url


def problems(url: str, tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    ms = load_mapping(path)
    with psycopg.connect(url) as conn:
        return check_mapping(ms, introspect(conn, schemas_of(ms)))


def test_lengths_and_bytea_that_fit_are_clean(types_db: str, tmp_path: Path) -> None:
    assert problems(types_db, tmp_path, GOOD) == []
    # without max_length, text into varchar(n) stays fine: PostgreSQL enforces n
    assert problems(types_db, tmp_path, GOOD.replace(", max_length: 8", "")) == []


def test_introspect_reads_declared_lengths(types_db: str) -> None:
    with psycopg.connect(types_db) as conn:
        cols = introspect(conn, ["mt"]).tables["mt", "t"]
    lengths = {name: c.max_length for name, c in cols.items()}
    assert lengths == {"id": None, "name": 8, "code": 4, "note": None, "nick": 6, "blob": None}


def _line(text: str, needle: str) -> int:
    [n] = [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln]
    return n


@pytest.mark.parametrize(
    ("old", "new", "level", "message"),
    [
        ("max_length: 8}", "max_length: 10}", "error",
         ("column mt.t.name is character varying(8), but the mapping's max_length is 10: "
         "values of 9 to 10 characters would fail in PostgreSQL; set max_length: 8")),
        ("max_length: 4}", "max_length: 3}", "warning",
         ("column mt.t.code is character(4), but the mapping's max_length is 3: values of 4 "
         "characters fit the column and are refused; set max_length: 4")),
        ("max_length: 6}", "max_length: 7}", "error",
         ("column mt.t.nick is mt.short, but the mapping's max_length is 7: values of 7 "
         "characters would fail in PostgreSQL; set max_length: 6")),
        ("{from: note, type: text}", "{from: note, type: text, max_length: 5}", "warning",
         ("column mt.t.note is text (no length limit), but the mapping's max_length is 5: "
         "longer values fit the column and are refused; drop max_length, or keep it on purpose")),
        ("{from: blob, type: bytea, encoding: base64}", "{from: blob, type: text}", "error",
         "column mt.t.blob is bytea, but the mapping writes text"),
        ("{from: note, type: text}", "{from: note, type: bytea}", "error",
         "column mt.t.note is text, but the mapping writes bytea"),
    ],
    ids=["longer than varchar", "shorter than char", "longer than a domain", "limit on text",
         "text into bytea", "bytea into text"],
)  # fmt: skip
def test_mismatches_are_reported_at_their_line(
    types_db: str, tmp_path: Path, old: str, new: str, level: str, message: str
) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new)
    [p] = problems(types_db, tmp_path, text)
    assert (p.line, p.entity, p.level, p.message) == (_line(text, new), "t", level, message)
