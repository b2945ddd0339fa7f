"""Per-entity SQL plans, built once per mapping set: staging tables and set-based statements.

Every statement joins a staging table with `ds_win` (the version gate's winners), so
only events that won the gate touch target tables.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from psycopg import sql

from dualsync.consumers.stage import StageTable

if TYPE_CHECKING:
    from dualsync.schema.mapping import ChildMapping, EntityMapping, MappingSet

__all__ = ["GATE_STAGE", "ChildPlan", "EntityPlan", "MappingPlan", "plan_for"]


def _select_list(alias: str, columns: tuple[str, ...], types: tuple[str, ...]) -> sql.Composable:
    items = [
        sql.SQL("{}.{}::{}").format(sql.Identifier(alias), sql.Identifier(c), sql.SQL(t))
        if t.startswith("vector")
        else sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(c))
        for c, t in zip(columns, types, strict=True)
    ]
    return sql.SQL(", ").join(items)


def _ids(names: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


@dataclass(frozen=True, slots=True)
class ChildPlan:
    """Staging and statements of one child table."""

    mapping: ChildMapping
    stage: StageTable
    delete: sql.Composed
    insert: sql.Composed


@dataclass(frozen=True, slots=True)
class EntityPlan:
    """Staging and statements of one entity."""

    mapping: EntityMapping
    stage: StageTable
    upsert: sql.Composed
    delete: sql.Composed
    children: tuple[ChildPlan, ...]


@dataclass(frozen=True, slots=True)
class MappingPlan:
    """Plans of every entity, and the order that keeps foreign keys satisfied."""

    entities: dict[str, EntityPlan]
    #: parents before children (by `ref` columns); deletes run in reverse
    order: tuple[str, ...]
    #: the version gate over every entity's staged rows, winners into `ds_win`
    gate: sql.Composed

    def stage_tables(self) -> list[StageTable]:
        """Every staging table of the set."""
        out = [GATE_STAGE]
        for p in self.entities.values():
            out.append(p.stage)
            out.extend(c.stage for c in p.children)
        return out


def _winner_join(alias: str, entity: str, *, deleted: bool) -> sql.Composed:
    return sql.SQL(
        "join ds_win w on w.entity = {e} and w._ds_key = {a}._ds_key and {neg}w.deleted"
    ).format(e=sql.Literal(entity), a=sql.Identifier(alias), neg=sql.SQL("" if deleted else "not "))


#: the gate's columns, staged in front of every entity's own
GATE_COLUMNS = ("_ds_ver", "_ds_del", "_ds_eid")
_GATE_TYPES = ("bigint", "boolean", "text")


#: the gate rows of entities whose fresh keys COPY straight into their table (fresh.py)
GATE_STAGE = StageTable("ds_gate", ("entity", *GATE_COLUMNS), ("text", *_GATE_TYPES))


def _gate_sql(entities: list[tuple[str, StageTable]]) -> sql.Composed:
    """One `row_state` upsert over every entity's staged rows (and `ds_gate`'s), in
    (entity, key) order (the lock order every worker shares); its winners go to `ds_win`.
    Same or older versions lose, and a delete leaves its tombstone, so a late old upsert
    cannot resurrect.

    It returns one row: the number of winners, and the entities and keys of the winning
    upserts of the entities given as its parameter (a text array) whose row_state row it
    inserted rather than updated (`xmax = 0`): keys the gate has never seen. That is a
    hint only, which `fresh.py` checks against the target's unique index."""
    staged = sql.SQL(" union all ").join(
        [
            sql.SQL("select {e} as entity, _ds_key, _ds_ver, _ds_del, _ds_eid from {s}").format(
                e=sql.Literal(name), s=sql.Identifier(stage.name)
            )
            for name, stage in entities
        ]
        + [
            sql.SQL("select entity, _ds_key, _ds_ver, _ds_del, _ds_eid from {s}").format(
                s=sql.Identifier(GATE_STAGE.name)
            )
        ]
    )
    return sql.SQL(
        "with g as (\n"
        "  insert into dualsync.row_state as rs (entity, key, version, deleted, event_id)\n"
        "  select entity, _ds_key, _ds_ver, _ds_del, _ds_eid from ({staged}) x\n"
        "  order by entity, _ds_key\n"
        "  on conflict (entity, key) do update\n"
        "    set version = excluded.version, deleted = excluded.deleted,\n"
        "        event_id = excluded.event_id, applied_at = now()\n"
        "    where rs.version < excluded.version\n"
        "  returning entity, key, deleted, (rs.xmax = 0 and not deleted\n"
        "    and entity = any(%s::text[])) as fresh\n"
        "), w as (\n"
        "  insert into ds_win (entity, _ds_key, deleted) select entity, key, deleted from g\n"
        ")\n"
        "select count(*), coalesce(array_agg(entity) filter (where fresh), '{{}}'),\n"
        "  coalesce(array_agg(key) filter (where fresh), '{{}}') from g"
    ).format(staged=staged)


def _entity_plan(index: int, em: EntityMapping) -> EntityPlan:
    table = sql.Identifier(em.schema, em.table)
    stage = StageTable(
        f"ds_s{index}", (*GATE_COLUMNS, *em.column_names), (*_GATE_TYPES, *em.pg_types)
    )
    updates = [c for c in em.column_names if c not in em.key_columns]
    action = (
        sql.SQL("do update set {}").format(
            sql.SQL(", ").join(
                sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in updates
            )
        )
        if updates
        else sql.SQL("do nothing")
    )
    upsert = sql.SQL(
        "insert into {t} ({cols}) select {sel} from {s} s {join} order by {pk} "
        "on conflict ({pk_plain}) {action}"
    ).format(
        t=table,
        cols=_ids(em.column_names),
        sel=_select_list("s", em.column_names, em.pg_types),
        s=sql.Identifier(stage.name),
        join=_winner_join("s", em.name, deleted=False),
        pk=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(k)) for k in em.key_columns),
        pk_plain=_ids(em.key_columns),
        action=action,
    )
    match = sql.SQL(" and ").join(
        sql.SQL("t.{0} = s.{0}").format(sql.Identifier(k)) for k in em.key_columns
    )
    delete = sql.SQL("delete from {t} t using {s} s {join} where {match}").format(
        t=table,
        s=sql.Identifier(stage.name),
        join=_winner_join("s", em.name, deleted=True),
        match=match,
    )
    children = tuple(_child_plan(index, j, em, c) for j, c in enumerate(em.children))
    return EntityPlan(em, stage, upsert, delete, children)


def _same(col: str, pg_type: str) -> sql.Composed:
    """`c.col` equals the staged `sc.col`, NULLs included, compared as the staged type.

    jsonb compares by value (the target may be json, which has no equality); vectors are
    cast to the column's dimension; numerics compare by value (1.5 = 1.50, as the verifier's
    canonical form does)."""
    target = sql.SQL("c.{}").format(sql.Identifier(col))
    staged = sql.SQL("sc.{}").format(sql.Identifier(col))
    if pg_type == "jsonb":
        target = sql.SQL("{}::jsonb").format(target)
    elif pg_type.startswith("vector"):
        staged = sql.SQL("{}::{}").format(staged, sql.SQL(pg_type))
    return sql.SQL("{} is not distinct from {}").format(target, staged)


def _child_plan(index: int, j: int, em: EntityMapping, cm: ChildMapping) -> ChildPlan:
    stage = StageTable(f"ds_c{index}_{j}", cm.column_names, cm.pg_types)
    parent_stage = sql.Identifier(f"ds_s{index}")
    child = sql.Identifier(cm.schema, cm.table)
    match = sql.SQL(" and ").join(
        sql.SQL("c.{} = s.{}").format(sql.Identifier(pc), sql.Identifier(k))
        for pc, k in zip(cm.parent_columns, em.key_columns, strict=True)
    )
    # Key columns are NOT NULL: plain `=` lets the planner use the child's primary key
    # (`is not distinct from` can neither use an index nor hash).
    same_row = sql.SQL(" and ").join(
        sql.SQL("c.{0} = sc.{0}").format(sql.Identifier(c)) if c in cm.key_columns else _same(c, t)
        for c, t in zip(cm.column_names, cm.pg_types, strict=True)
    )
    # The children of every winner (upsert or delete) become exactly its staged rows, but
    # rows that are already there, identical, are left alone: a chat thread that gains one
    # message writes one row, not the whole thread again (fewer dead tuples, FK checks and
    # WAL). Delete what differs, then insert what is missing.
    delete = sql.SQL(
        "delete from {t} c using {s} s join ds_win w on w.entity = {e} and w._ds_key = s._ds_key "
        "where {match} and not exists "
        "(select 1 from {cs} sc where sc._ds_key = s._ds_key and not w.deleted and {same})"
    ).format(
        t=child,
        s=parent_stage,
        e=sql.Literal(em.name),
        match=match,
        cs=sql.Identifier(stage.name),
        same=same_row,
    )
    insert = sql.SQL(
        "insert into {t} ({cols}) select {sel} from {cs} sc {join} "
        "where not exists (select 1 from {t} c where {same})"
    ).format(
        t=child,
        cols=_ids(cm.column_names),
        sel=_select_list("sc", cm.column_names, cm.pg_types),
        cs=sql.Identifier(stage.name),
        join=_winner_join("sc", em.name, deleted=False),
        same=same_row,
    )
    return ChildPlan(cm, stage, delete, insert)


_plans: dict[int, tuple[MappingSet, MappingPlan]] = {}


def plan_for(ms: MappingSet) -> MappingPlan:
    """The plan of a mapping set, built on first use (mapping sets live as long as a worker)."""
    hit = _plans.get(id(ms))
    if hit is not None and hit[0] is ms:
        return hit[1]
    names = sorted(ms.entities)
    plans = {name: _entity_plan(i, ms.entities[name]) for i, name in enumerate(names)}
    graph = {
        n: {d for d in ms.entities[n].depends_on if d in ms.entities and d != n} for n in names
    }
    try:
        order = tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        # Mutually referencing entities: no order satisfies both; FK failures are retried.
        order = tuple(names)
    gate = _gate_sql([(name, plans[name].stage) for name in names])
    plan = MappingPlan(plans, order, gate)
    _plans[id(ms)] = (ms, plan)
    return plan
