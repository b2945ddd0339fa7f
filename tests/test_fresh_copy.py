"""New keys COPY straight into their table (consumers/fresh.py), on real Postgres.

Every test compares against what the staged upsert stores, or against the staged path
itself: the COPY is an optimisation and must never change a row, a count or an error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dualsync.consumers.apply import ApplyResult, apply_batch
from dualsync.consumers.change import Change, in_key_order
from dualsync.consumers.fresh import fresh_entities
from dualsync.consumers.plan import plan_for
from dualsync.consumers.pool import configure_connection
from dualsync.consumers.stage import WINNERS, ensure_tables
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.schema.migrate import Migrator, core_set

SCHEMA = """
drop schema if exists fr cascade;
create schema fr;
create table fr.parents (id text primary key, name text not null, born timestamptz);
create table fr.kids (
  id text primary key,
  parent_id text not null references fr.parents (id),
  body jsonb,
  score numeric
);
create table fr.notes_json (id text primary key, body json);
create table fr.ruled (id text primary key, v text);
create table fr.ruled_log (v text);
create rule ruled_log as on insert to fr.ruled do also insert into fr.ruled_log values (new.v);
create table fr.with_kids (id text primary key, title text);
create table fr.kid_rows (
  with_kid_id text not null references fr.with_kids (id) on delete cascade,
  position int not null,
  v text,
  primary key (with_kid_id, position)
);
create table fr.loose (id text primary key, title text);
create table fr.short (id text primary key, code varchar(3));
create table fr.loose_rows (
  loose_id text not null,
  position int not null,
  v text,
  primary key (loose_id, position)
);
"""

MAPPING = """
version: 1
app: fr
schema: fr
entities:
  parents:
    table: parents
    key: {column: id, strategy: text}
    columns:
      name: {from: name, type: text, nullable: false}
      born: {from: born, type: timestamptz}
  kids:
    table: kids
    key: {column: id, strategy: text}
    columns:
      parent_id: {from: parentId, type: ref, entity: parents, nullable: false}
      body:      {from: body, type: jsonb}
      score:     {from: score, type: numeric}
  notes_json:
    table: notes_json
    key: {column: id, strategy: text}
    columns:
      body: {from: body, type: jsonb}
  ruled:
    table: ruled
    key: {column: id, strategy: text}
    columns:
      v: {from: v, type: text}
  with_kids:
    table: with_kids
    key: {column: id, strategy: text}
    columns:
      title: {from: title, type: text}
    children:
      - table: kid_rows
        from: rows
        parent_column: with_kid_id
        order_column: position
        columns:
          v: {from: v, type: text}
  short:
    table: short
    key: {column: id, strategy: text}
    columns:
      code: {from: code, type: text}
  loose:
    table: loose
    key: {column: id, strategy: text}
    columns:
      title: {from: title, type: text}
    children:
      - table: loose_rows
        from: rows
        parent_column: loose_id
        order_column: position
        columns:
          v: {from: v, type: text}
"""


@pytest.fixture(scope="module")
def fr_db(pg_url: str) -> str:
    Migrator(pg_url, [core_set()]).up()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return pg_url


@pytest.fixture(scope="module")
def ms(tmp_path_factory: pytest.TempPathFactory) -> MappingSet:
    path = Path(tmp_path_factory.mktemp("fr")) / "fr.yaml"
    path.write_text(MAPPING)
    return load_mapping(path)


@pytest.fixture
async def conn(fr_db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(fr_db, autocommit=True) as c:
        await configure_connection(c)
        yield c


def up(ms: MappingSet, entity: str, key: str, doc: dict[str, Any], version: int) -> Change:
    return Change(
        entity, key, version, False, f"e-{key}-{version}", ms.entity(entity).to_rows(key, doc)
    )


def down(entity: str, key: str, version: int) -> Change:
    return Change(entity, key, version, True, f"e-{key}-{version}", None)


async def apply(conn: psycopg.AsyncConnection[Any], ms: MappingSet, *cs: Change) -> ApplyResult:
    return await apply_batch(conn, ms, in_key_order(cs))


async def rows(conn: psycopg.AsyncConnection[Any], query: str) -> list[tuple[Any, ...]]:
    cur = await conn.execute(query)
    return await cur.fetchall()


def parent(i: int, **over: Any) -> dict[str, Any]:
    return {"name": f"p{i}", "born": "2024-01-02T03:04:05Z", **over}


async def test_only_tables_a_copy_cannot_get_wrong_are_eligible(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    plan = plan_for(ms)
    await ensure_tables(conn, [WINNERS, *plan.stage_tables()])
    # notes_json: a json column where staging has jsonb (the staged path casts, COPY
    # would not); ruled: a rule, which COPY ignores; loose: child rows with no foreign key
    # to their parent could be there without it, and must then be replaced, not added to.
    # short: text into varchar(3), which takes text's binary form.
    assert await fresh_entities(conn, plan.entities.values()) == {
        "parents",
        "kids",
        "with_kids",
        "short",
    }


async def test_new_keys_are_copied_and_store_what_the_upsert_stores(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    first = [up(ms, "parents", f"a{i}", parent(i), 1) for i in range(5)]
    result = await apply(conn, ms, *first)
    assert result == ApplyResult(applied=5, deleted=0, stale=0, direct=5)
    copied = await rows(conn, "select * from fr.parents where id like 'a%' order by id")
    # The same documents again, newer: these keys are known, so they take the upsert,
    # which rewrites every column from staging: nothing may change.
    again = [up(ms, "parents", f"a{i}", parent(i), 2) for i in range(5)]
    assert await apply(conn, ms, *again) == ApplyResult(5, 0, 0, direct=0)
    assert await rows(conn, "select * from fr.parents where id like 'a%' order by id") == copied
    assert len(copied) == 5
    assert await rows(conn, "select count(*) from dualsync.row_state where key like 'a%'") == [(5,)]


async def test_a_row_already_there_sends_the_batch_through_the_upsert(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    # Written by someone else: the gate has never seen it, the table has it.
    await conn.execute("insert into fr.parents (id, name) values ('b1', 'stale')")
    result = await apply(
        conn, ms, up(ms, "parents", "b0", parent(0), 1), up(ms, "parents", "b1", parent(1), 1)
    )
    assert result == ApplyResult(applied=2, deleted=0, stale=0, direct=0)
    assert await rows(conn, "select id, name from fr.parents where id like 'b%' order by id") == [
        ("b0", "p0"),
        ("b1", "p1"),
    ]
    assert await rows(
        conn, "select key, version from dualsync.row_state where key like 'b%' order by key"
    ) == [("b0", 1), ("b1", 1)]


async def test_known_tombstoned_and_new_keys_in_one_batch(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    await apply(
        conn, ms, up(ms, "parents", "c1", parent(1), 1), up(ms, "parents", "c2", parent(2), 1)
    )
    await apply(conn, ms, down("parents", "c2", 2))
    result = await apply(
        conn,
        ms,
        up(ms, "parents", "c1", parent(1, name="renamed"), 2),  # known: upsert
        up(ms, "parents", "c2", parent(2), 3),  # tombstoned, newer: re-created by the upsert
        up(ms, "parents", "c3", parent(3), 1),  # new: copied
        down("parents", "c4", 1),  # a delete of a key never seen: a tombstone only
        up(ms, "parents", "c1x", parent(9), 1),  # new: copied
    )
    assert result == ApplyResult(applied=4, deleted=1, stale=0, direct=2)
    assert await rows(conn, "select id, name from fr.parents where id like 'c%' order by id") == [
        ("c1", "renamed"),
        ("c1x", "p9"),
        ("c2", "p2"),
        ("c3", "p3"),
    ]
    # Stale events lose the gate whichever way their key would have gone.
    stale = await apply(conn, ms, up(ms, "parents", "c3", parent(3, name="old"), 1))
    assert stale == ApplyResult(0, 0, 1, direct=0)


async def test_a_parent_and_its_referencing_rows_new_in_one_batch(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    kid = {"parentId": "d1", "body": {"toys": ["ball"]}, "score": "1.50"}
    result = await apply(
        conn, ms, up(ms, "kids", "k1", kid, 1), up(ms, "parents", "d1", parent(1), 1)
    )
    assert result == ApplyResult(applied=2, deleted=0, stale=0, direct=2)
    assert await rows(conn, "select id, parent_id, body, score from fr.kids where id = 'k1'") == [
        ("k1", "d1", {"toys": ["ball"]}, pytest.approx(1.5))
    ]


async def test_a_missing_parent_fails_as_the_upsert_fails(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    kid = {"parentId": "nobody", "body": None, "score": None}
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        await apply(conn, ms, up(ms, "kids", "k9", kid, 1))
    # Nothing of the batch stayed: not the row, not the gate's row_state.
    assert await rows(conn, "select count(*) from fr.kids where id = 'k9'") == [(0,)]
    assert await rows(conn, "select count(*) from dualsync.row_state where key = 'k9'") == [(0,)]


async def test_ineligible_tables_keep_the_staged_path(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    # An orphan child row, which the staged path replaces with the document's rows.
    await conn.execute("insert into fr.loose_rows values ('l1', 5, 'orphan')")
    result = await apply(
        conn,
        ms,
        up(ms, "notes_json", "n1", {"body": {"b": 1, "a": [2]}}, 1),
        up(ms, "loose", "l1", {"title": "t", "rows": [{"v": "x"}, {"v": "y"}]}, 1),
    )
    assert result == ApplyResult(applied=2, deleted=0, stale=0, direct=0)
    assert await rows(conn, "select body::text from fr.notes_json") == [('{"a": [2], "b": 1}',)]
    assert await rows(conn, "select position, v from fr.loose_rows order by position") == [
        (0, "x"),
        (1, "y"),
    ]


async def test_new_parents_copy_their_child_rows_too(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    def doc(*vs: str) -> dict[str, Any]:
        return {"title": "t", "rows": [{"v": v} for v in vs]}

    result = await apply(
        conn, ms, up(ms, "with_kids", "w1", doc("x", "y"), 1), up(ms, "with_kids", "w2", doc(), 1)
    )
    assert result == ApplyResult(applied=2, deleted=0, stale=0, direct=2)
    query = "select with_kid_id, position, v from fr.kid_rows order by 1, 2"
    assert await rows(conn, query) == [("w1", 0, "x"), ("w1", 1, "y")]
    # Known now: the staged path replaces them, and a new parent beside it is copied.
    result = await apply(
        conn,
        ms,
        up(ms, "with_kids", "w1", doc("y"), 2),
        up(ms, "with_kids", "w3", doc("z"), 1),
        down("with_kids", "w2", 2),
    )
    assert result == ApplyResult(applied=2, deleted=1, stale=0, direct=1)
    assert await rows(conn, query) == [("w1", 0, "y"), ("w3", 0, "z")]
    assert await rows(conn, "select id from fr.with_kids order by id") == [("w1",), ("w3",)]


async def test_a_child_row_already_there_sends_the_batch_through_the_upsert(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    # Its parent row too (the foreign key allows nothing else), written by someone else.
    await conn.execute("insert into fr.with_kids values ('w9', 'old')")
    await conn.execute("insert into fr.kid_rows values ('w9', 0, 'old'), ('w9', 4, 'gone')")
    doc = {"title": "new", "rows": [{"v": "a"}, {"v": "b"}]}
    result = await apply(conn, ms, up(ms, "with_kids", "w9", doc, 1))
    assert result == ApplyResult(applied=1, deleted=0, stale=0, direct=0)
    assert await rows(conn, "select position, v from fr.kid_rows where with_kid_id = 'w9'") == [
        (0, "a"),
        (1, "b"),
    ]


async def test_a_table_with_rules_is_refused_as_the_upsert_refuses_it(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    # COPY would write the row and skip the rule; ON CONFLICT refuses such a table, and
    # so the batch fails the way it always has, writing nothing.
    with pytest.raises(psycopg.errors.FeatureNotSupported, match="rules"):
        await apply(conn, ms, up(ms, "ruled", "r1", {"v": "logged"}, 1))
    assert await rows(conn, "select count(*) from fr.ruled") == [(0,)]
    assert await rows(conn, "select count(*) from fr.ruled_log") == [(0,)]


async def test_varchar_lengths_are_checked_as_the_cast_checks_them(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> None:
    result = await apply(
        conn,
        ms,
        up(ms, "short", "s1", {"code": "abc"}, 1),
        up(ms, "short", "s2", {"code": "ab  "}, 1),
    )
    assert result == ApplyResult(applied=2, deleted=0, stale=0, direct=2)
    assert await rows(conn, "select id, code from fr.short order by id") == [
        ("s1", "abc"),
        ("s2", "ab "),  # trailing spaces beyond the length are cut, as the cast cuts them
    ]
    new = up(ms, "short", "s3", {"code": "abcd"}, 1)  # copied
    known = up(ms, "short", "s1", {"code": "abcd"}, 2)  # upserted
    for change in (new, known):
        with pytest.raises(psycopg.errors.StringDataRightTruncation):
            await apply(conn, ms, change)
