"""Read both sides of a batch of keys: legacy records through the adapter, target rows (with
child rows and the gate's row_state) through one query per table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dualsync.schema.legacy import LegacyRecord, LegacyStore

__all__ = ["Sides", "fetch_sides", "sample_target_keys"]


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


async def fetch_sides(
    conn: psycopg.AsyncConnection[Any],
    em: Any,
    store: LegacyStore,
    keys: Sequence[str],
) -> Sides:
    """Both sides of `keys` (canonical legacy keys)."""
    legacy = await store.get_many(list(keys))
    translated = [em.translate_key(k) for k in keys]
    params: list[Any] = [list(keys)] + [
        [t[i] for t in translated] for i in range(len(em.key_columns))
    ]
    match = sql.SQL(" and ").join(
        sql.SQL("t.{0} = k.{0}").format(sql.Identifier(c)) for c in em.key_columns
    )
    q = sql.SQL("select k._ds_key, {cols} from {keys} join {t} t on {match}").format(
        cols=_select(em.column_names, em.pg_types, "t"),
        keys=_key_table(em),
        t=sql.Identifier(em.schema, em.table),
        match=match,
    )
    rows: dict[str, tuple[Any, ...]] = {}
    cur = await conn.execute(q, params)
    for r in await cur.fetchall():
        rows[r[0]] = tuple(r[1:])
    children: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for cm in em.children:
        cmatch = sql.SQL(" and ").join(
            sql.SQL("c.{} = k.{}").format(sql.Identifier(pc), sql.Identifier(k))
            for pc, k in zip(cm.parent_columns, em.key_columns, strict=True)
        )
        cq = sql.SQL("select k._ds_key, {cols} from {keys} join {t} c on {match}").format(
            cols=_select(cm.column_names, cm.pg_types, "c"),
            keys=_key_table(em),
            t=sql.Identifier(cm.schema, cm.table),
            match=cmatch,
        )
        cur = await conn.execute(cq, params)
        for r in await cur.fetchall():
            children.setdefault(r[0], {}).setdefault(cm.table, []).append(tuple(r[1:]))
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
