"""Enum labels from the live database, for enum columns that do not list their values."""

from __future__ import annotations

from typing import Any

import psycopg

from dualsync.schema.mapping.compiled import MappingSet

__all__ = ["load_enum_labels"]


async def load_enum_labels(
    conn: psycopg.AsyncConnection[Any], ms: MappingSet
) -> dict[str, frozenset[str]]:
    """Labels of every enum type the mapping names (`name` or `schema.name`)."""
    cur = await conn.execute(
        "select n.nspname, t.typname, e.enumlabel from pg_enum e "
        "join pg_type t on t.oid = e.enumtypid join pg_namespace n on n.oid = t.typnamespace "
        "order by e.enumsortorder"
    )
    by_qualified: dict[str, set[str]] = {}
    by_name: dict[str, set[str]] = {}
    for nsp, typ, label in await cur.fetchall():
        by_qualified.setdefault(f"{nsp}.{typ}", set()).add(label)
        if nsp in (ms.schema, "public"):
            by_name.setdefault(typ, set()).add(label)
    out: dict[str, frozenset[str]] = {}
    for name in ms.enums:
        labels = by_qualified.get(name) if "." in name else by_name.get(name)
        if labels is not None:
            out[name] = frozenset(labels)
    return out
