"""What the live database has: tables, their columns and types, and enum labels.

`dualsync mappings check` compares a mapping with this snapshot. It is read once, in two
catalog queries, so the comparison itself (`dualsync.schema.mapping.check`) is pure
logic that tests can feed directly. The CLI is synchronous, so this is sync psycopg.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import psycopg

__all__ = ["Catalog", "DbColumn", "introspect"]

QualifiedName = tuple[str, str]

# Domains are looked through (`bt` is the base type); `typcategory = 'A'` marks arrays,
# whose element type is `et`. `atttypmod` of a pgvector column is its dimension; that of
# a varchar(n)/char(n) column (or of its domain, `typtypmod`) is n + 4, -1 without n.
_COLUMNS: Final = """
select n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       bn.nspname, bt.typname, bt.typtype, et.typname, a.atttypmod, a.attnotnull,
       a.atthasdef or a.attidentity <> '' or a.attgenerated <> '',
       case when bt.typname in ('varchar', 'bpchar') then
         nullif(case when t.typtype = 'd' then t.typtypmod else a.atttypmod end, -1) - 4
       end
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_type t on t.oid = a.atttypid
join pg_type bt on bt.oid = case when t.typtype = 'd' then t.typbasetype else t.oid end
join pg_namespace bn on bn.oid = bt.typnamespace
left join pg_type et on et.oid = bt.typelem and bt.typcategory = 'A'
where c.relkind in ('r', 'p', 'f') and a.attnum > 0 and not a.attisdropped
  and n.nspname = any(%s)
order by n.nspname, c.relname, a.attnum
"""
_ENUMS: Final = """
select n.nspname, t.typname, e.enumlabel
from pg_enum e
join pg_type t on t.oid = e.enumtypid
join pg_namespace n on n.oid = t.typnamespace
order by n.nspname, t.typname, e.enumsortorder
"""


@dataclass(frozen=True, slots=True)
class DbColumn:
    """One column of a live table."""

    name: str
    #: as Postgres prints it: `integer`, `vector(1536)`, `timestamp without time zone`
    display: str
    type_schema: str
    #: `pg_type.typname` of the (domain's base) type: `int4`, `vector`, `_text`, `mood`
    type_name: str
    #: `pg_type.typtype`: `b` base, `e` enum, ...
    kind: str
    #: element `typname` of an array type (`text` for `text[]`), else None
    element: str | None
    typmod: int
    not_null: bool
    #: a default, identity or generated column: Postgres fills it when the mapping does not
    has_default: bool
    #: n of varchar(n)/char(n) (`character_maximum_length`), None when unlimited or not text
    max_length: int | None = None


@dataclass(frozen=True, slots=True)
class Catalog:
    """Tables (by schema and name, columns in order) and enum types (labels in order)."""

    tables: dict[QualifiedName, dict[str, DbColumn]]
    enums: dict[QualifiedName, tuple[str, ...]]
    schemas: frozenset[str]


def introspect(conn: psycopg.Connection[Any], schemas: Iterable[str]) -> Catalog:
    """Read the tables of `schemas` (and every enum type) from the database."""
    wanted = sorted(set(schemas))
    tables: dict[QualifiedName, dict[str, DbColumn]] = {}
    for row in conn.execute(_COLUMNS, (wanted,)).fetchall():
        nsp, rel, att, display, tnsp, typname, kind, elem, typmod, not_null, has_default, n = row
        tables.setdefault((nsp, rel), {})[att] = DbColumn(
            att, display, tnsp, typname, kind, elem, typmod, not_null, has_default, n
        )
    enums: dict[QualifiedName, list[str]] = {}
    for nsp, typ, label in conn.execute(_ENUMS).fetchall():
        enums.setdefault((nsp, typ), []).append(label)
    present = conn.execute(
        "select nspname from pg_namespace where nspname = any(%s)", (wanted,)
    ).fetchall()
    return Catalog(
        tables,
        {k: tuple(v) for k, v in enums.items()},
        frozenset(r[0] for r in present),
    )
