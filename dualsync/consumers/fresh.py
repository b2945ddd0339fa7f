"""New keys COPY straight into their table: an upsert of a key the table lacks is an insert.

The staged path writes every row twice: COPY into a temp staging table, then `INSERT ...
SELECT ... ON CONFLICT DO UPDATE` into the target. For an embedding (6 KB a row) that
second write is most of the batch. For an *eligible* entity, the winning upserts of keys
the version gate has never seen are instead COPYed into the target itself; its other
changes take the staged path.

Correctness does not rest on "never seen" (the gate's hint, `xmax = 0`): the arbiter is
the target's unique index on the key, the one the staged `ON CONFLICT` names. COPYing a
key the table has not got is the insert the upsert would do; a key it has got (a row
written by someone else, say) makes the COPY fail with a unique violation, the transaction
is rolled back, and the whole batch goes again with every row staged and upserted as
before. (Not a savepoint: rows written in a subtransaction carry its xid, not the
transaction's, and subtransactions have costs of their own on busy servers.) Other errors (a
foreign key, a NOT NULL) are the ones the staged upsert would raise, with the same
SQLSTATE, and go to the worker's classification unchanged.

An entity is eligible (checked in the catalog once per connection and table) when:
- it has no children (a child's rows are replaced, not inserted);
- its staging table travels in binary and every mapped column of the target has the
  staging column's type and typmod: COPY writes the staging type's bytes, where the
  staged path would cast (a `json` or `varchar(n)` target keeps the staged path);
- the target is a table (plain or partitioned) without rules, which COPY ignores (and
  `ON CONFLICT` refuses: such a batch fails as it always has), and
  without row-level security, which COPY refuses;
- it has a unique, immediate, non-partial index on exactly the key columns.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import Any, Final

import psycopg
from psycopg import errors, sql

from dualsync.consumers.plan import GATE_COLUMNS, EntityPlan
from dualsync.consumers.stage import copy_binary

__all__ = ["KeyTakenError", "copy_fresh", "fresh_entities"]

_checked: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], dict[str, bool]] = (
    weakref.WeakKeyDictionary()
)

#: one row: whether the target may take COPYed rows in place of the staged upsert
_ELIGIBLE: Final = sql.SQL(
    """
select c.relkind in ('r', 'p') and not c.relhasrules and not c.relrowsecurity
  and (select count(*) from pg_attribute t
       join pg_attribute s on s.attrelid = to_regclass(%(stage)s) and s.attname = t.attname
        and s.atttypid = t.atttypid and s.atttypmod = t.atttypmod and not s.attisdropped
       where t.attrelid = c.oid and t.attnum > 0 and not t.attisdropped
        and t.attname = any(%(columns)s::text[])) = cardinality(%(columns)s::text[])
  and exists (
    select 1 from pg_index i
    where i.indrelid = c.oid and i.indisunique and i.indimmediate and i.indpred is null
      and i.indexprs is null
      and (select array_agg(a.attname::text order by a.attname::text)
           from unnest(i.indkey::int2[]) with ordinality k(attnum, n)
           join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
           where k.n <= i.indnkeyatts) = %(keys)s::text[])
from pg_class c where c.oid = to_regclass(%(target)s)
"""
)


async def _eligible(conn: psycopg.AsyncConnection[Any], ep: EntityPlan) -> bool:
    em = ep.mapping
    if em.children or ep.stage.binary is None:
        return False
    params = {
        "target": sql.Identifier(em.schema, em.table).as_string(conn),
        "stage": "pg_temp." + sql.Identifier(ep.stage.name).as_string(conn),
        "columns": list(em.column_names),
        "keys": sorted(em.key_columns),
    }
    cur = await conn.execute(_ELIGIBLE, params)
    row = await cur.fetchone()
    return bool(row and row[0])


async def fresh_entities(
    conn: psycopg.AsyncConnection[Any], plans: Iterable[EntityPlan]
) -> frozenset[str]:
    """The entities of `plans` whose new keys may COPY straight into their table (run
    outside a transaction, after `ensure_tables`: it reads the staging tables' types)."""
    known = _checked.setdefault(conn, {})
    out = []
    for ep in plans:
        name = ep.stage.name
        if name not in known:
            known[name] = await _eligible(conn, ep)
        if known[name]:
            out.append(ep.mapping.name)
    return frozenset(out)


def _copy_sql(ep: EntityPlan) -> sql.Composed:
    em = ep.mapping
    return sql.SQL("copy {} ({}) from stdin (format binary)").format(
        sql.Identifier(em.schema, em.table),
        sql.SQL(", ").join(map(sql.Identifier, em.column_names)),
    )


class KeyTakenError(Exception):
    """A key COPYed as new was in the table already: the transaction is lost, and the
    batch goes again with every row staged."""


async def copy_fresh(
    cur: psycopg.AsyncCursor[Any], ep: EntityPlan, rows: Sequence[Sequence[Any]]
) -> bool:
    """COPY the mapped rows into the entity's table. True: written; False: nothing sent
    (the connection cannot send a type in binary), stage them instead. Raises `KeyTakenError`
    on a unique violation, and any other error unchanged."""
    if not rows:
        return True
    assert ep.stage.binary is not None  # noqa: S101 - fresh_entities checked it
    kinds = ep.stage.binary[1 + len(GATE_COLUMNS) :]
    try:
        return await copy_binary(cur, _copy_sql(ep), kinds, rows)
    except errors.UniqueViolation as exc:
        raise KeyTakenError(str(exc.diag.constraint_name or "")) from exc
