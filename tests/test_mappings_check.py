"""`dualsync mappings check` against live schemas: the examples check clean, typos are caught
with the file and the exact line of the offending entry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from dualsync.ops.cli import main
from dualsync.schema.mapping import load_mapping
from dualsync.schema.mapping.check import Problem, check_mapping, schemas_of
from dualsync.schema.mapping.introspect import introspect
from dualsync.schema.migrate import MigrationSet, Migrator, core_set
from dualsync.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(ROOT.glob("examples/*/mapping.yaml"))

SCHEMA = """
create schema mc;
create type mc.mood as enum ('happy', 'sad');
create table mc.people (
  id uuid primary key,
  name text not null,
  age integer,
  born timestamptz,
  mood mc.mood,
  score numeric(12, 2),
  tags text[],
  seen_at timestamp,
  note text not null,
  nickname text not null default 'x'
);
create table mc.pets (
  person_id uuid not null references mc.people (id) on delete cascade,
  position integer not null,
  name text not null,
  primary key (person_id, position)
);
"""

GOOD = """\
version: 1
app: mc
schema: mc
entities:
  people:
    table: people
    key: {column: id, strategy: uuid5}
    columns:
      name: {from: name, type: text, nullable: false}
      age: {from: age, type: int}
      born: {from: born, type: timestamptz}
      mood: {from: mood, type: enum, enum: mood, values: [happy, sad]}
      score: {from: score, type: numeric}
      tags: {from: tags, type: "text[]"}
      note: {from: note, type: text, nullable: false}
    children:
      - table: pets
        from: pets
        parent_column: person_id
        order_column: position
        columns:
          name: {from: name, type: text, nullable: false}
"""


def _with_db(url: str, dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = dbname
    return psycopg.conninfo.make_conninfo("", **info)


@contextmanager
def fresh_db(server_url: str, label: str) -> Iterator[str]:
    """A database of its own (the examples share table names), dropped afterwards."""
    name = f"t_check_{label[:20]}_{uuid.uuid4().hex[:8]}".lower()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield _with_db(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


@pytest.fixture
def use_db() -> Iterator[None]:
    """Settings are cached per process: re-read them around a test that sets DATABASE_URL."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def check(
    url: str, paths: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    code = main(["mappings", "check", *map(str, paths)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out.splitlines()


def _needs_vector(mapping: Path) -> bool:
    ms = load_mapping(mapping)
    cols = [c for em in ms.entities.values() for c in em.columns]
    cols += [c for em in ms.entities.values() for ch in em.children for c in ch.columns]
    return any(c.type == "vector" for c in cols)


@pytest.mark.parametrize("mapping", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_checks_clean(
    mapping: Path,
    pg_server_url: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    use_db: None,
) -> None:
    if _needs_vector(mapping):
        request.getfixturevalue("require_vector")
    with fresh_db(pg_server_url, mapping.parent.name) as url:
        sets = [core_set(), MigrationSet.from_dir(mapping.parent / "migrations")]
        Migrator(url, sets).up(post_load=True)
        code, out = check(url, [mapping], monkeypatch, capsys)
    errors = [ln for ln in out if ln.startswith(f"{mapping}:") and ": warning: " not in ln]
    assert errors == []
    assert code == 0
    assert out[-1].startswith("ok: 1 mapping file(s) match the database")


@pytest.fixture(scope="module")
def tiny_db(pg_url: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return pg_url


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line containing `needle`."""
    [n] = [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln]
    return n


def test_good_mapping_is_clean(
    tiny_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    use_db: None,
) -> None:
    code, out = check(tiny_db, [write(tmp_path, GOOD)], monkeypatch, capsys)
    assert out == ["ok: 1 mapping file(s) match the database (0 warning(s))"]
    assert code == 0


# (id, line of GOOD to replace, replacement, the line to blame (a substring), message part
#  [, how many problems in all: a typo'd key or parent also leaves the real column unfilled])
TYPOS = [
    ("unknown column", "      age: {from: age", "      agee: {from: age, type: int}",
     "agee:", "column agee does not exist in mc.people"),
    ("unknown table", "    table: people", "    table: peeple",
     "peeple", "table mc.peeple does not exist"),
    ("unknown child table", "      - table: pets", "      - table: petz",
     "petz", "table mc.petz does not exist"),
    ("unknown key column", "    key: {column: id,", "    key: {column: idd, strategy: uuid5}",
     "idd", "column idd does not exist in mc.people", 2),  # + id is not filled
    ("unknown parent column", "        parent_column:", "        parent_column: owner_id",
     "owner_id", "column owner_id does not exist in mc.pets", 2),  # + person_id
    ("unknown order column", "        order_column:", "        order_column: pos",
     "pos", "column pos does not exist in mc.pets", 2),  # + position is not filled
    ("enum value missing", "      mood: {from", ("      mood: {from: mood, type: enum, "
     "enum: mood, values: [happy, sad, angry]}"),
     "angry", "enum value 'angry' is not a label of mc.mood (labels: happy, sad)"),
    ("enum value missing, block list", "      mood: {from",
     ("      mood:\n        from: mood\n        type: enum\n        enum: mood\n"
      "        values:\n          - happy\n          - cross\n          - sad"),
     "- cross", "enum value 'cross' is not a label of mc.mood"),
    ("enum type missing", "      mood: {from", "      mood: {from: mood, type: enum, enum: moood}",
     "moood", "enum type moood does not exist"),
    ("text into enum", "      mood: {from", "      mood: {from: mood, type: text}",
     "mood: {from", "column mc.people.mood is mc.mood, but the mapping writes text"),
    ("date into timestamptz", "      born:", "      born: {from: born, type: date}",
     "born:", "column mc.people.born is timestamp with time zone, but the mapping writes date"),
    ("bigint into integer", "      age: {from: age", "      age: {from: age, type: bigint}",
     "age:", "column mc.people.age is integer, but the mapping writes bigint"),
    ("float into numeric", "      score:", "      score: {from: score, type: float}",
     "score:", "column mc.people.score is numeric(12,2), but the mapping writes float"),
    ("int[] for text[]", "      tags:", "      tags: {from: tags, type: jsonb}",
     "tags:", "column mc.people.tags is text[], but the mapping writes jsonb"),
    ("text key into uuid", "    key: {column: id,", "    key: {column: id, strategy: text}",
     "key:", "column mc.people.id is uuid, but the mapping writes key (text)", 2),  # + pets
    ("NOT NULL column left out", "      note:", "",
     "  people:", ("column note of mc.people is NOT NULL without a default, and the mapping "
     "does not fill it")),
    ("invalid type in the file", "      age: {from: age", "      age: {from: age, type: integer}",
     "age:", "entities.people.columns.age.type: Input should be"),
    ("invalid YAML", "      score:", "      score: {from: score, type: numeric",
     "tags:", "invalid YAML"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "blame", "message", "count"),
                         [(*t[1:], 1)[:5] for t in TYPOS], ids=[t[0] for t in TYPOS])  # fmt: skip
def test_typo_is_rejected_at_its_line(
    tiny_db: str,
    tmp_path: Path,
    old: str,
    new: str,
    blame: str,
    message: str,
    count: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    use_db: None,
) -> None:
    [target] = [ln for ln in GOOD.splitlines() if ln.startswith(old)]
    text = GOOD.replace(target + "\n", new + "\n" if new else "")
    path = write(tmp_path, text)
    code, out = check(tiny_db, [path], monkeypatch, capsys)
    assert code == 1
    entity = "mapping" if message == "invalid YAML" else "people"
    where = f"{path}:{line_of(text, blame)}: {entity}: "
    assert [ln for ln in out if ln.startswith(where) and message in ln], out
    assert len(out) == count + 1, out  # the problems, then the summary
    assert out[-1] == f"{count} problem(s), 0 warning(s) in 1 mapping file(s)"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("      note:", "      note: {from: note, type: text}",
         "column mc.people.note is NOT NULL, but the mapping lets note be null"),
        ("      tags:", "      seen_at: {from: seenAt, type: timestamptz}",
         "column mc.people.seen_at is timestamp without time zone"),
    ],
    ids=["nullable into NOT NULL", "timestamp without time zone"],
)  # fmt: skip
def test_warnings_do_not_fail(
    tiny_db: str,
    tmp_path: Path,
    old: str,
    new: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    use_db: None,
) -> None:
    [target] = [ln for ln in GOOD.splitlines() if ln.startswith(old)]
    text = GOOD.replace(target + "\n", new + "\n" + (target + "\n" if "tags" in old else ""))
    path = write(tmp_path, text)
    code, out = check(tiny_db, [path], monkeypatch, capsys)
    assert out[0].startswith(f"{path}:{line_of(text, new.strip())}: people: warning: {message}")
    assert out[-1] == "ok: 1 mapping file(s) match the database (1 warning(s))"
    assert code == 0


def test_many_files_one_summary(
    tiny_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    use_db: None,
) -> None:
    good = write(tmp_path, GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("table: pets", "table: petz").replace("age:", "agee:"))
    broken = tmp_path / "broken.yaml"
    broken.write_text(GOOD.replace("version: 1", "version: 2"))
    code, out = check(tiny_db, [bad, good, broken], monkeypatch, capsys)
    assert code == 1
    assert [ln.split(":")[0] for ln in out[:-1]] == [str(bad), str(bad), str(broken)]
    assert out[2] == f"{broken}:1: mapping: version: Input should be 1"
    assert out[-1] == "3 problem(s), 0 warning(s) in 3 mapping file(s)"


def test_a_file_that_does_not_load_needs_no_database(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    use_db: None,
) -> None:
    path = write(tmp_path, GOOD.replace("    table: people\n", "    table: people\n  bad\n"))
    code, out = check("postgresql://nobody@127.0.0.1:1/nope", [path], monkeypatch, capsys)
    assert code == 1
    assert out[0].startswith(f"{path}:")
    assert "invalid YAML" in out[0]


def test_check_mapping_returns_problems(tiny_db: str, tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("[happy, sad]", "[happy, sad, meh]"))
    ms = load_mapping(path)
    with psycopg.connect(tiny_db) as conn:
        catalog = introspect(conn, schemas_of(ms))
    assert ("mc", "people") in catalog.tables
    assert catalog.tables["mc", "people"]["nickname"].has_default
    assert catalog.enums["mc", "mood"] == ("happy", "sad")
    assert check_mapping(ms, catalog) == [
        Problem(
            str(path),
            line_of(GOOD, "mood: {from"),
            "people",
            "enum value 'meh' is not a label of mc.mood (labels: happy, sad)",
        )
    ]


def test_wrong_vector_dimension(
    require_vector: None,
    tiny_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    use_db: None,
) -> None:
    with psycopg.connect(tiny_db, autocommit=True) as conn:
        conn.execute("create extension if not exists vector")
        conn.execute("create table if not exists mc.docs (id text primary key, emb vector(3))")
    text = (
        "version: 1\napp: mc\nschema: mc\nentities:\n  docs:\n    table: docs\n"
        "    key: {column: id}\n    columns:\n"
        "      emb:\n        from: embedding\n        type: vector\n        dim: {dim}\n"
    )
    code, out = check(tiny_db, [write(tmp_path, text.replace("{dim}", "3"))], monkeypatch, capsys)
    assert code == 0, out
    path = write(tmp_path, text.replace("{dim}", "4"))
    code, out = check(tiny_db, [path], monkeypatch, capsys)
    assert code == 1
    assert out[0] == (
        f"{path}:{line_of(text, 'dim:')}: docs: column mc.docs.emb is vector(3) "
        "(3 dimensions), but the mapping has dim 4"
    )
