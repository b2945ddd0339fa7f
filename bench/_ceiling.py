"""The fair ceiling of the apply benchmark: what Postgres takes for the worker's batches.

The event sequence is cut into windows of the worker's batch size; each window is
collapsed per key in Python (highest version wins, as `collapse` does) and applied in one
transaction: every entity's rows (upserts and deletes, children included) COPYed in
binary into one temp staging table each, then one `INSERT ... ON CONFLICT` and one
`DELETE` per table. No Redis, no envelope validation, no decoding: the rows are mapped
before the clock starts, so the figure is Postgres's (and psycopg's COPY), not Python's.
It runs with the garbage collector tuned as the worker's is (`dualsync.gctune`).

The *gated* ceiling adds the version gate: the staged (entity, key, version) rows go
through the same `row_state` upsert as the worker's, and only its winners are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from bench._common import now
from dualsync.consumers.plan import plan_for
from dualsync.consumers.pool import configure_connection
from dualsync.gctune import fewer_collections
from dualsync.producers import EventSpec
from dualsync.schema.mapping import EntityMapping, MappingSet, RowSet

__all__ = ["Staged", "premap", "windowed"]

_META = ("_ds_del", "_ds_ver", "_ds_eid")
_META_TYPES = ("boolean", "bigint", "text")
ident = sql.Identifier
# Binary dumpers of the shop's and dovvy's staging types (enum labels go as text; vectors
# through pgvector's dumper, which configure_connection registers). Kept apart
# from the worker's own table (dualsync.consumers.stage) so the ceiling does not move when
# the worker changes.
_DUMPERS = {
    "text": "text",
    "integer": "int4",
    "bigint": "int8",
    "numeric": "numeric",
    "boolean": "bool",
    "timestamptz": "timestamptz",
    "jsonb": "jsonb",
    "uuid": "uuid",
    "double precision": "float8",
}


@dataclass(frozen=True, slots=True)
class StageTable:
    """A temp table `name (_ds_key text, columns...)` and its binary COPY."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]

    def ddl(self) -> sql.Composed:
        cols = [sql.SQL("_ds_key text")] + [
            sql.SQL("{} {}").format(ident(c), sql.SQL(t))
            for c, t in zip(self.columns, self.types, strict=True)
        ]
        return sql.SQL("create temp table {} ({}) on commit delete rows").format(
            ident(self.name), sql.SQL(", ").join(cols)
        )

    def copy_sql(self) -> sql.Composed:
        return sql.SQL("copy {} ({}) from stdin (format binary)").format(
            ident(self.name), _cols(("_ds_key", *self.columns))
        )

    def dumpers(self) -> list[str]:
        return ["text", *(_dumper(t) for t in self.types)]


def _dumper(pg_type: str) -> str:
    return "vector" if pg_type.startswith("vector") else _DUMPERS.get(pg_type, "text")


async def copy_rows(
    cur: psycopg.AsyncCursor[Any], table: StageTable, rows: list[tuple[Any, ...]]
) -> None:
    """Binary COPY of rows into a staging table."""
    if not rows:
        return
    async with cur.copy(table.copy_sql()) as cp:
        cp.set_types(table.dumpers())
        for r in rows:
            await cp.write_row(r)


@dataclass(frozen=True, slots=True)
class Staged:
    """One event, mapped before the clock starts."""

    entity: str
    key: str
    version: int
    deleted: bool
    event_id: str
    rows: RowSet | None


def premap(ms: MappingSet, specs: list[EventSpec]) -> list[Staged]:
    """Every event mapped to its rows (deletes to none)."""
    out = []
    for i, s in enumerate(specs):
        em = ms.entity(s.entity)
        rows = None if s.payload is None else em.to_rows(s.key, s.payload)
        out.append(Staged(s.entity, s.key, s.version or 0, rows is None, f"e{i}", rows))
    return out


def _cols(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(map(ident, names))


@dataclass(frozen=True, slots=True)
class _Table:
    """Staging and statements of one entity (and its children) in the ceiling."""

    entity: str
    stage: StageTable
    children: tuple[tuple[str, StageTable], ...]  # child table name, its staging table
    statements_up: tuple[sql.Composed, ...]  # parent upsert, child delete + insert
    statement_del: sql.Composed
    pad: int


def _win(alias: str, entity: str, gated: bool) -> sql.Composable:
    if not gated:
        return sql.SQL("")
    return sql.SQL("join ceil_win w on w.entity = {} and w.key = {}._ds_key").format(
        sql.Literal(entity), ident(alias)
    )


def _table(index: int, ms: MappingSet, entity: str, gated: bool) -> _Table:
    em = ms.entity(entity)
    stage = StageTable(f"ceil_s{index}", (*_META, *em.column_names), (*_META_TYPES, *em.pg_types))
    t = ident(em.schema, em.table)
    updates = [c for c in em.column_names if c not in em.key_columns]
    upsert = sql.SQL(
        "insert into {t} ({c}) select {sc} from {s} s {w} where not s._ds_del "
        "on conflict ({k}) do update set {u}"
    ).format(
        t=t,
        c=_cols(em.column_names),
        sc=sql.SQL(", ").join(sql.SQL("s.{}").format(ident(c)) for c in em.column_names),
        s=ident(stage.name),
        w=_win("s", entity, gated),
        k=_cols(em.key_columns),
        u=sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(ident(c)) for c in updates),
    )
    match = sql.SQL(" and ").join(sql.SQL("t.{0} = s.{0}").format(ident(k)) for k in em.key_columns)
    delete = sql.SQL("delete from {t} t using {s} s {w} where s._ds_del and {m}").format(
        t=t, s=ident(stage.name), w=_win("s", entity, gated), m=match
    )
    stmts: list[sql.Composed] = [upsert]
    children = []
    for j, cm in enumerate(em.children):
        cs = StageTable(f"ceil_c{index}_{j}", cm.column_names, cm.pg_types)
        children.append((cm.table, cs))
        ct = ident(cm.schema, cm.table)
        cmatch = sql.SQL(" and ").join(
            sql.SQL("c.{} = s.{}").format(ident(pc), ident(k))
            for pc, k in zip(cm.parent_columns, em.key_columns, strict=True)
        )
        stmts.append(
            sql.SQL("delete from {ct} c using {s} s {w} where {m}").format(
                ct=ct, s=ident(stage.name), w=_win("s", entity, gated), m=cmatch
            )
        )
        stmts.append(
            sql.SQL("insert into {ct} ({c}) select {sc} from {cs} sc {w}").format(
                ct=ct,
                c=_cols(cm.column_names),
                sc=sql.SQL(", ").join(sql.SQL("sc.{}").format(ident(c)) for c in cm.column_names),
                cs=ident(cs.name),
                w=_win("sc", entity, gated),
            )
        )
    pad = len(em.column_names) - len(em.key_columns)
    return _Table(entity, stage, tuple(children), tuple(stmts), delete, pad)


def _gate_sql(tables: list[_Table]) -> sql.Composed:
    union = sql.SQL(" union all ").join(
        sql.SQL("select {e} as entity, _ds_key, _ds_ver, _ds_del, _ds_eid from {s}").format(
            e=sql.Literal(t.entity), s=ident(t.stage.name)
        )
        for t in tables
    )
    return sql.SQL(
        "with g as (insert into dualsync.row_state as rs (entity, key, version, deleted, event_id) "
        "select * from ({u}) x on conflict (entity, key) do update "
        "set version = excluded.version, deleted = excluded.deleted, "
        "event_id = excluded.event_id, applied_at = now() where rs.version < excluded.version "
        "returning entity, key) insert into ceil_win select entity, key from g"
    ).format(u=union)


def _collapse(window: list[Staged]) -> dict[str, list[Staged]]:
    best: dict[tuple[str, str], Staged] = {}
    for e in window:
        k = (e.entity, e.key)
        cur = best.get(k)
        if cur is None or e.version > cur.version:
            best[k] = e
    out: dict[str, list[Staged]] = {}
    for e in best.values():
        out.setdefault(e.entity, []).append(e)
    return out


def _staged_rows(
    em: EntityMapping, t: _Table, group: list[Staged]
) -> tuple[list[tuple[Any, ...]], dict[str, list[tuple[Any, ...]]]]:
    rows: list[tuple[Any, ...]] = []
    kids: dict[str, list[tuple[Any, ...]]] = {c: [] for c, _ in t.children}
    pad = (None,) * t.pad
    for e in group:
        if e.rows is None:
            rows.append((e.key, True, e.version, e.event_id, *em.translate_key(e.key), *pad))
            continue
        rows.append((e.key, False, e.version, e.event_id, *e.rows.values))
        for c, crows in e.rows.children.items():
            kids[c].extend((e.key, *r) for r in crows)
    return rows, kids


async def _apply_window(
    cur: psycopg.AsyncCursor[Any],
    ms: MappingSet,
    tables: dict[str, _Table],
    order: tuple[str, ...],
    window: list[Staged],
    gate: sql.Composed | None,
) -> None:
    groups = _collapse(window)
    for name, group in groups.items():
        t = tables[name]
        rows, kids = _staged_rows(ms.entity(name), t, group)
        await copy_rows(cur, t.stage, rows)
        for c, cs in t.children:
            await copy_rows(cur, cs, kids[c])
    if gate is not None:
        await cur.execute(gate)
    for name in order:
        if name in groups:
            for stmt in tables[name].statements_up:
                await cur.execute(stmt)
    for name in reversed(order):
        if name in groups:
            await cur.execute(tables[name].statement_del)


async def windowed(
    db: str, ms: MappingSet, specs: list[EventSpec], batch: int, *, gated: bool, truncate: str
) -> float:
    """Seconds to apply `specs` window by window (see the module docstring)."""
    events = premap(ms, specs)
    plan = plan_for(ms)
    names = sorted(ms.entities)
    tables = {n: _table(i, ms, n, gated) for i, n in enumerate(names)}
    gate = _gate_sql(list(tables.values())) if gated else None
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await configure_connection(conn)
        await conn.execute(truncate)
        async with conn.cursor() as cur:
            for t in tables.values():
                await cur.execute(t.stage.ddl())
                for _, cs in t.children:
                    await cur.execute(cs.ddl())
            await cur.execute(
                "create temp table if not exists ceil_win (entity text, key text) "
                "on commit delete rows"
            )
        # The worker holds the same GC thresholds while it runs (dualsync.gctune).
        with fewer_collections():
            t0 = now()
            for i in range(0, len(events), batch):
                async with conn.transaction(), conn.cursor() as cur:
                    await _apply_window(cur, ms, tables, plan.order, events[i : i + batch], gate)
            return now() - t0
