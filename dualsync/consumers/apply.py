"""Apply one collapsed batch in one transaction: COPY -> staging -> version gate -> targets.

    1. COPY every entity's rows, each with its gate columns (key, version, deleted,
       event id), into temp staging tables (binary COPY where the types allow);
    2. one `INSERT ... ON CONFLICT DO UPDATE ... WHERE row_state.version < excluded.version
       RETURNING` decides the winners (into `ds_win`); same or older versions lose and
       a delete leaves its tombstone in row_state, so a late old upsert cannot resurrect;
    3. set-based upserts (parents first), child replacement, then deletes (children first).

No per-row round trips: the number of statements depends on the entities in the
batch, not on its size. The caller commits, then acks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from dualsync.consumers.change import Change
from dualsync.consumers.plan import EntityPlan, MappingPlan, plan_for
from dualsync.consumers.stage import WINNERS, copy_rows, ensure_tables
from dualsync.schema.mapping import MappingSet

__all__ = ["ApplyResult", "apply_batch"]


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """Counts of one batch: events that changed Postgres, and those that lost the gate."""

    applied: int
    deleted: int
    stale: int


def _stage_rows(plan: EntityPlan, changes: Sequence[Change]) -> tuple[list[Any], list[list[Any]]]:
    em = plan.mapping
    pad = [None] * (len(em.column_names) - len(em.key_columns))
    rows: list[Any] = []
    child_rows: list[list[Any]] = [[] for _ in plan.children]
    for c in changes:
        gate = (c.key, c.version, c.deleted, c.event_id)
        if c.rows is None:
            rows.append((*gate, *em.translate_key(c.key), *pad))
            continue
        rows.append((*gate, *c.rows.values))
        for j, cp in enumerate(plan.children):
            for r in c.rows.children.get(cp.mapping.table, ()):
                child_rows[j].append((c.key, *r))
    return rows, child_rows


async def apply_batch(
    conn: psycopg.AsyncConnection[Any],
    ms: MappingSet,
    changes: Sequence[Change],
    *,
    on_staged: Callable[[], object] | None = None,
) -> ApplyResult:
    """Apply collapsed, key-sorted changes in one transaction (`conn` in autocommit mode).

    `on_staged` is called once the rows are COPYed, when what is left is Postgres's work
    (the gate, the upserts, the commit): the worker decodes its next batch from then on.
    Raises psycopg errors unchanged: the worker classifies them (retry, bisect, dead-letter).
    """
    if not changes:
        return ApplyResult(0, 0, 0)
    plan = plan_for(ms)
    await ensure_tables(conn, [WINNERS, *plan.stage_tables()])
    by_entity: dict[str, list[Change]] = {}
    for c in changes:
        by_entity.setdefault(c.entity, []).append(c)
    applied = 0
    async with conn.transaction(), conn.cursor() as cur:
        for name, group in by_entity.items():
            ep = plan.entities[name]
            rows, child_rows = _stage_rows(ep, group)
            await copy_rows(cur, ep.stage, rows)
            for cp, crow in zip(ep.children, child_rows, strict=True):
                await copy_rows(cur, cp.stage, crow)
        if on_staged is not None:
            on_staged()
        await cur.execute(plan.gate)
        winners = max(cur.rowcount, 0)
        if winners:
            applied = await _write_winners(cur, plan, by_entity)
    return ApplyResult(applied=applied, deleted=winners - applied, stale=len(changes) - winners)


async def _write_winners(
    cur: psycopg.AsyncCursor[Any], plan: MappingPlan, by_entity: dict[str, list[Change]]
) -> int:
    """Upserts and child replacement parents-first, then deletes children-first."""
    applied = 0
    for name in plan.order:
        if name not in by_entity:
            continue
        ep = plan.entities[name]
        await cur.execute(ep.upsert)
        applied += max(cur.rowcount, 0)
        for cp in ep.children:
            await cur.execute(cp.delete)
            await cur.execute(cp.insert)
    for name in reversed(plan.order):
        if name in by_entity and any(c.deleted for c in by_entity[name]):
            await cur.execute(plan.entities[name].delete)
    return applied
