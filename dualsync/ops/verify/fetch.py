"""Read both sides of a batch of keys: legacy records through the adapter, target rows (with
child rows and the gate's row_state) through one query per table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dualsync.errors import PermanentError
from dualsync.schema.legacy import LegacyRecord, LegacyStore

__all__ = ["Sides", "fetch_rows", "fetch_sides", "sample_target_keys", "target_queries"]


@dataclass(frozen=True, slots=True)
class Sides:
    """One batch, read from both sides at (nearly) the same moment."""

    legacy: dict[str, LegacyRecord]
    #: canonical key -> column values in mapping order
    rows: dict[str, tuple[Any, ...]]
    #: canonical key -> child table -> rows in mapping order
    children: dict[str, dict[str, list[tuple[Any, ...]]]]
    #: canonical key -> (version, deleted) from row_state
    state: dict[str, tuple[int, bool]]


def _as_text(pg_type: str) -> bool:
    # vectors as text: no numpy needed, and exact float32 digits; jsonb as text: parsed with
    # exact decimals (psycopg would hand over floats)
    return pg_type.startswith("vector") or pg_type in {"jsonb", "json"}


def _select(names: Sequence[str], types: Sequence[str], alias: str) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("{}.{}::text").format(sql.Identifier(alias), sql.Identifier(n))
        if _as_text(t)
        else sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(n))
        for n, t in zip(names, types, strict=True)
    )


def _key_table(em: Any) -> sql.Composable:
    """`unnest(%s::t1[], %s::t2[], ...) as k(_ds_key, c1, c2...)`: the batch's keys."""
    types = [t for n, t in zip(em.column_names, em.pg_types, strict=True) if n in em.key_columns]
    arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(t)) for t in ["text", *types])
    cols = sql.SQL(", ").join(map(sql.Identifier, ["_ds_key", *em.key_columns]))
    return sql.SQL("unnest({}) as k({})").format(arrays, cols)


def target_queries(em: Any) -> list[sql.Composed]:
    """The parent-row query, then one per child table, each joined to a batch of keys
    (`%s` arrays: canonical keys, then each key column); built once per entity."""
    match = sql.SQL(" and ").join(
        sql.SQL("t.{0} = k.{0}").format(sql.Identifier(c)) for c in em.key_columns
    )
    out = [
        sql.SQL("select k._ds_key, {} from {} join {} t on {}").format(
            _select(em.column_names, em.pg_types, "t"), _key_table(em),
            sql.Identifier(em.schema, em.table), match,
        )
    ]  # fmt: skip
    for cm in em.children:
        cmatch = sql.SQL(" and ").join(
            sql.SQL("c.{} = k.{}").format(sql.Identifier(pc), sql.Identifier(k))
            for pc, k in zip(cm.parent_columns, em.key_columns, strict=True)
        )
        out.append(
            sql.SQL("select k._ds_key, {} from {} join {} c on {}").format(
                _select(cm.column_names, cm.pg_types, "c"), _key_table(em),
                sql.Identifier(cm.schema, cm.table), cmatch,
            )
        )  # fmt: skip
    return out


Rows = dict[str, tuple[Any, ...]]
Children = dict[str, dict[str, list[tuple[Any, ...]]]]


async def fetch_rows(
    conn: psycopg.AsyncConnection[Any],
    em: Any,
    queries: Sequence[bytes | sql.SQL | sql.Composed],
    keys: Sequence[str],
) -> tuple[Rows, Children]:
    """Target rows (mapping order) and child rows of canonical `keys`, through
    `target_queries(em)` (or those queries rendered once, as bytes, by a caller that runs
    them often); a key the key strategy refuses has no row (never applied)."""
    good: list[str] = []
    translated: list[tuple[Any, ...]] = []
    for k in keys:
        try:
            translated.append(em.translate_key(k))
        except PermanentError:
            continue
        good.append(k)
    rows: Rows = {}
    children: Children = {}
    if not good:
        return rows, children
    params = [good] + [[t[i] for t in translated] for i in range(len(em.key_columns))]
    parent, *child_queries = queries
    cur = await conn.execute(parent, params)
    for r in await cur.fetchall():
        rows[r[0]] = tuple(r[1:])
    for cm, q in zip(em.children, child_queries, strict=True):
        cur = await conn.execute(q, params)
        for r in await cur.fetchall():
            children.setdefault(r[0], {}).setdefault(cm.table, []).append(tuple(r[1:]))
    return rows, children


async def fetch_sides(
    conn: psycopg.AsyncConnection[Any],
    em: Any,
    store: LegacyStore,
    keys: Sequence[str],
) -> Sides:
    """Both sides of `keys` (canonical legacy keys)."""
    legacy = await store.get_many(list(keys))
    rows, children = await fetch_rows(conn, em, target_queries(em), keys)
    cur = await conn.execute(
        "select key, version, deleted from dualsync.row_state where entity = %s and key = any(%s)",
        [em.name, list(keys)],
    )
    state = {k: (int(v), bool(d)) for k, v, d in await cur.fetchall()}
    return Sides(legacy, rows, children, state)


async def sample_target_keys(
    conn: psycopg.AsyncConnection[Any], entity: str, n: int, seed: int
) -> list[str]:
    """Up to `n` live keys of the target, by row_state, in a seeded order."""
    cur = await conn.execute(
        "select key from dualsync.row_state where entity = %s and not deleted "
        "order by md5(key || %s::text) limit %s",
        [entity, str(seed), n],
    )
    return [r[0] for r in await cur.fetchall()]
