"""Helpers shared by the example apps' test modules (`test_<app>.py` beside this file).

Every example is tested the same way: its migrations go up into a database, its generated
legacy documents go through its mapping into Postgres, and the rows and the catalog are
read back. These helpers were once copied into each module; they live here once, generic
over the app (its directory, generator and seed are arguments), so that a fix to how the
examples are loaded or inspected reaches all of them. What one app checks stays in its
own module.

No `assert` here: the checks stay in the test modules, where pytest rewrites them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from dualsync.consumers.direct import upsert_rowsets
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping import EntityMapping, MappingSet, RowSet, load_mapping
from dualsync.schema.migrate import MigrationSet, Migrator, core_set
from examples._legacy import LegacyDoc

#: where the example apps live: one directory each, with `migrations/` and `mapping.yaml`
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: an app's generated documents, grouped by entity in the order they were generated
Docs = dict[str, list[LegacyDoc]]

#: (table, column, udt, nullable) of every public column
COLUMN_TYPES = """
select c.table_name, c.column_name, c.udt_name, c.is_nullable = 'YES'
from information_schema.columns c where c.table_schema = 'public'
"""
#: (table, column, udt, varchar length, nullable, default) of every public column
COLUMN_DETAILS = """
select table_name, column_name, udt_name, character_maximum_length, is_nullable = 'YES',
       column_default
from information_schema.columns where table_schema = 'public'
"""
_CONSTRAINTS = """
select cl.relname, c.contype::text,
       array(select a.attname from unnest(c.conkey) with ordinality k(n, o)
             join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.o),
       coalesce(rc.relname, ''),
       array(select a.attname from unnest(c.confkey) with ordinality k(n, o)
             join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n order by k.o),
       c.confdeltype::text, pg_get_constraintdef(c.oid)
from pg_constraint c
join pg_class cl on cl.oid = c.conrelid
left join pg_class rc on rc.oid = c.confrelid
where cl.relnamespace = 'public'::regnamespace and c.contype in ('p', 'f', 'u', 'c', 'x')
"""
_INDEXES = """
select i.relname, t.relname,
       array(select a.attname from unnest(x.indkey) with ordinality k(n, o)
             join pg_attribute a on a.attrelid = x.indrelid and a.attnum = k.n order by k.o),
       pg_get_indexdef(x.indexrelid),
       coalesce((select c.contype::text from pg_constraint c
                 where c.conindid = x.indexrelid and c.contype in ('p', 'u', 'x')), '')
from pg_index x
join pg_class i on i.oid = x.indexrelid
join pg_class t on t.oid = x.indrelid
where t.relnamespace = 'public'::regnamespace
"""


class Constraint(NamedTuple):
    """A table constraint of the public schema (primary, foreign, unique, check, exclusion)."""

    table: str
    #: pg_constraint.contype: p, f, u, c or x
    kind: str
    columns: tuple[str, ...]
    #: the referenced table and columns of a foreign key ('' and () otherwise)
    references: str
    referenced: tuple[str, ...]
    #: a foreign key's ON DELETE action (pg_constraint.confdeltype: a no action, c cascade...)
    on_delete: str
    definition: str


class Index(NamedTuple):
    """An index of the public schema; expression columns are left out of `columns`."""

    name: str
    table: str
    columns: tuple[str, ...]
    #: pg_get_indexdef: "CREATE INDEX <name> ON public.<table> USING ..."
    definition: str
    #: the kind of constraint the index backs: p, u or x; '' for a plain index
    backs: str


def migrator(app: Path, url: str) -> Migrator:
    """The runner for dualsync's own migrations and then the app's."""
    return Migrator(url, [core_set(), MigrationSet.from_dir(app / "migrations")])


def migration_count(app: Path) -> int:
    return len(list((app / "migrations").glob("*.sql")))


def pk(em: EntityMapping, legacy_key: str) -> Any:
    """The primary key a legacy key becomes (single-column keys)."""
    [value] = em.translate_key(legacy_key)
    return value


def rows_of(em: EntityMapping, key: str, doc: dict[str, Any]) -> RowSet:
    """The rows of a legacy document, taken the real path: a document travels as (Extended)
    JSON in the event payload before the mapping sees it."""
    return em.to_rows(key, loads_payload(dumps_payload(doc)))


def query(url: str, stmt: str | sql.Composable, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(stmt, params).fetchall()  # type: ignore[arg-type]  # test SQL


def count(url: str, table: str) -> int:
    [(n,)] = query(url, sql.SQL("select count(*) from {}").format(sql.Identifier(table)))
    return int(n)


def columns(url: str, stmt: str = COLUMN_TYPES) -> dict[str, dict[str, tuple[Any, ...]]]:
    """`{table: {column: shape}}` from `stmt`, whose rows are (table, column, *shape)."""
    out: dict[str, dict[str, tuple[Any, ...]]] = defaultdict(dict)
    for table, column, *shape in query(url, stmt):
        out[table][column] = tuple(shape)
    return dict(out)


def constraints(url: str) -> list[Constraint]:
    return [
        Constraint(table, kind, tuple(cols), ref, tuple(ref_cols), on_delete, definition)
        for table, kind, cols, ref, ref_cols, on_delete, definition in query(url, _CONSTRAINTS)
    ]


def indexes(url: str) -> list[Index]:
    return [
        Index(name, table, tuple(cols), definition, backs)
        for name, table, cols, definition, backs in query(url, _INDEXES)
    ]


@contextmanager
def scratch_db(server_url: str, label: str) -> Iterator[str]:
    """A database of its own, so going down and up does not disturb the loaded one."""
    name = f"t_{label}_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))


def app_mapping(app: Path) -> MappingSet:
    return load_mapping(app / "mapping.yaml")


def docs_by_entity(generate: Callable[[int, int], Iterable[LegacyDoc]], n: int, seed: int) -> Docs:
    """`generate(n, seed)`, grouped by entity."""
    out: Docs = defaultdict(list)
    for d in generate(n, seed):
        out[d.entity].append(d)
    return out


async def migrate_and_load(
    app: Path,
    url: str,
    mapping: MappingSet,
    docs: Docs,
    entities: Sequence[str],
    timezone: str | None = None,
) -> dict[str, int]:
    """Migrate `url`, upsert every entity's documents (in `entities` order, parents first),
    then run the post-load migrations, as a real backfill does. Returns the rows upserted
    per entity, for the caller to check. `timezone` sets the loading session's TimeZone."""
    m = migrator(app, url)
    m.up()
    session = url
    if timezone is not None:
        session = psycopg.conninfo.make_conninfo(url, options=f"-c TimeZone={timezone}")
    upserted: dict[str, int] = {}
    async with await psycopg.AsyncConnection.connect(session, autocommit=True) as conn:
        for entity in entities:
            em = mapping.entity(entity)
            rowsets = [rows_of(em, d.key, d.doc) for d in docs[entity]]
            upserted[entity] = await upsert_rowsets(conn, em, rowsets)
    m.up(post_load=True)
    return upserted
