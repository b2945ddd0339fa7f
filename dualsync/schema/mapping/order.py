"""Entities in foreign-key order: parents before children (by their `ref` columns).

One function for every part that must respect it: the apply plan (deletes run in
reverse), the backfill (a parent entity is snapshotted before its children).
"""

from __future__ import annotations

import graphlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dualsync.schema.mapping.compiled import MappingSet

__all__ = ["dependency_order"]


def dependency_order(ms: MappingSet) -> tuple[str, ...]:
    """Entity names, parents first; name order among independent ones.

    Mutually referencing entities have no such order: they come in name order, and the
    foreign-key failures that follow are retried like any missing parent.
    """
    names = sorted(ms.entities)
    graph = {
        n: {d for d in ms.entities[n].depends_on if d in ms.entities and d != n} for n in names
    }
    try:
        sorter = graphlib.TopologicalSorter(graph)
        sorter.prepare()
    except graphlib.CycleError:
        return tuple(names)
    out: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        out.extend(ready)
        sorter.done(*ready)
    return tuple(out)
