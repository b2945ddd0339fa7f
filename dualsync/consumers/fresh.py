"""New keys COPY straight into their table: an upsert of a key the table lacks is an insert.

The staged path writes every row twice: COPY into a temp staging table, then `INSERT ...
SELECT ... ON CONFLICT DO UPDATE` into the target (and child rows through an anti-join
against the rows already there). For an embedding (6 KB a row) that
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

An entity is eligible (checked in the catalog once per connection and table) when its
table, and each of its child tables, passes these:
- its staging table travels in binary and every mapped column has the staging column's
  type and typmod: COPY writes the staging type's bytes, where the staged path would cast
  (a `json` column keeps the staged path). One pair differs and is allowed: text into
  `varchar(n)`, whose binary input is text's and checks the length as the cast does
  (trailing spaces cut, anything else longer refused with the same SQLSTATE);
- it is a table (plain or partitioned) without rules, which COPY ignores (and `ON
  CONFLICT` refuses: such a batch fails as it always has), and without row-level
  security, which COPY refuses;
- it has a unique, immediate, non-partial index on exactly its key columns;
and each child table has a validated, enabled foreign key from its parent columns to
the parent table. A child row cannot then be there without its parent row, so the new
parent's children are inserted, not replaced (a child row whose key is there anyway
fails on that unique index, as the parent's would).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import psycopg
from psycopg import errors, sql

from dualsync.consumers.plan import GATE_COLUMNS, EntityPlan
from dualsync.consumers.stage import can_copy_binary, copy_binary, copy_sql
from dualsync.consumers.statements import qualified

if TYPE_CHECKING:
    from dualsync.schema.mapping import RowSet

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
        and not s.attisdropped
        and (s.atttypid = t.atttypid and s.atttypmod = t.atttypmod
             or s.atttypid = 'text'::regtype and t.atttypid = 'varchar'::regtype)
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


#: one row: whether a validated, enforced foreign key from the child's parent columns to
#: the parent table exists (so no child row can be there without its parent row)
_ENFORCED_FK: Final = sql.SQL(
    """
select exists (
  select 1 from pg_constraint f
  where f.contype = 'f' and f.convalidated
    and f.conrelid = to_regclass(%(child)s) and f.confrelid = to_regclass(%(parent)s)
    and (select array_agg(a.attname::text order by a.attname::text)
         from unnest(f.conkey) k(attnum)
         join pg_attribute a on a.attrelid = f.conrelid and a.attnum = k.attnum)
        = %(columns)s::text[]
    and not exists (select 1 from pg_trigger t where t.tgconstraint = f.oid and t.tgenabled = 'D'))
"""
)


async def _one(conn: psycopg.AsyncConnection[Any], query: sql.SQL, params: dict[str, Any]) -> bool:
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return bool(row and row[0])


def _name(conn: psycopg.AsyncConnection[Any], schema: str, table: str) -> str:
    return qualified(schema, table).as_string(conn)


async def _eligible(conn: psycopg.AsyncConnection[Any], ep: EntityPlan) -> bool:
    em = ep.mapping
    tables = [(em.schema, em.table, ep.stage, em.column_names, em.key_columns)]
    tables += [
        (cp.mapping.schema, cp.mapping.table, cp.stage, cp.mapping.column_names,
         cp.mapping.key_columns)
        for cp in ep.children
    ]  # fmt: skip
    for schema, table, stage, columns, keys in tables:
        if stage.binary is None or not keys:
            return False
        params = {
            "target": _name(conn, schema, table),
            "stage": "pg_temp." + sql.Identifier(stage.name).as_string(conn),
            "columns": list(columns),
            "keys": sorted(keys),
        }
        if not await _one(conn, _ELIGIBLE, params):
            return False
    parent = _name(conn, em.schema, em.table)
    for cp in ep.children:
        params = {
            "child": _name(conn, cp.mapping.schema, cp.mapping.table),
            "parent": parent,
            "columns": sorted(cp.mapping.parent_columns),
        }
        if not await _one(conn, _ENFORCED_FK, params):
            return False
    return True


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


class KeyTakenError(Exception):
    """A key COPYed as new was in the table already: the transaction is lost, and the
    batch goes again with every row staged."""


async def copy_fresh(
    cur: psycopg.AsyncCursor[Any], ep: EntityPlan, rowsets: Sequence[RowSet]
) -> bool:
    """COPY the mapped rows, and their child rows, into their tables. True: written;
    False: nothing sent (the connection cannot send a type in binary), stage them instead.
    Raises `KeyTakenError` on a unique violation, and any other error unchanged."""
    if not rowsets:
        return True
    em = ep.mapping
    assert ep.stage.binary is not None  # noqa: S101 - fresh_entities checked it
    copies = [
        (copy_sql(qualified(em.schema, em.table), em.column_names, binary=True),
         ep.stage.binary[1 + len(GATE_COLUMNS) :], [rs.values for rs in rowsets])
    ]  # fmt: skip
    for cp in ep.children:
        assert cp.stage.binary is not None  # noqa: S101 - fresh_entities checked it
        cm = cp.mapping
        rows = [r for rs in rowsets for r in rs.children.get(cm.table, ())]
        if rows:
            copies.append(
                (
                    copy_sql(qualified(cm.schema, cm.table), cm.column_names, binary=True),
                    cp.stage.binary[1:],
                    rows,
                )
            )
    if not all(can_copy_binary(cur, kinds) for _, kinds, _ in copies):
        return False
    try:
        for stmt, kinds, rows in copies:
            await copy_binary(cur, stmt, kinds, rows)
    except errors.UniqueViolation as exc:
        raise KeyTakenError(str(exc.diag.constraint_name or "")) from exc
    return True
