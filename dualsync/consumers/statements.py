"""SQL statements built from a mapping (identifiers come from mappings only, never events).

Built once per entity and cached: the hot path only binds values.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol

from psycopg import sql

__all__ = ["TableShape", "delete_sql", "insert_sql", "qualified", "upsert_sql"]


class TableShape(Protocol):
    """What the SQL builders need to know about a target or child table."""

    @property
    def schema(self) -> str: ...
    @property
    def table(self) -> str: ...
    @property
    def column_names(self) -> tuple[str, ...]: ...
    @property
    def key_columns(self) -> tuple[str, ...]: ...


def qualified(schema: str, table: str) -> sql.Identifier:
    """`"schema"."table"`."""
    return sql.Identifier(schema, table)


def _cols(names: Sequence[str]) -> sql.Composed:
    return sql.SQL(", ").join(map(sql.Identifier, names))


@lru_cache(maxsize=512)
def _upsert(
    schema: str, table: str, columns: tuple[str, ...], keys: tuple[str, ...]
) -> sql.Composed:
    updates = [c for c in columns if c not in keys]
    action = (
        sql.SQL("do update set {}").format(
            sql.SQL(", ").join(
                sql.SQL("{0} = excluded.{0}").format(sql.Identifier(c)) for c in updates
            )
        )
        if updates
        else sql.SQL("do nothing")
    )
    return sql.SQL("insert into {t} ({cols}) values ({vals}) on conflict ({keys}) {action}").format(
        t=qualified(schema, table),
        cols=_cols(columns),
        vals=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        keys=_cols(keys),
        action=action,
    )


def upsert_sql(shape: TableShape) -> sql.Composed:
    """`insert ... on conflict (pk) do update` for one row of `shape`."""
    return _upsert(shape.schema, shape.table, shape.column_names, shape.key_columns)


def insert_sql(shape: TableShape) -> sql.Composed:
    """Plain `insert` of one row (child rows, after their parent's rows were deleted)."""
    return sql.SQL("insert into {t} ({cols}) values ({vals})").format(
        t=qualified(shape.schema, shape.table),
        cols=_cols(shape.column_names),
        vals=sql.SQL(", ").join(sql.Placeholder() * len(shape.column_names)),
    )


def delete_sql(schema: str, table: str, columns: Sequence[str]) -> sql.Composed:
    """`delete ... where c1 = %s and c2 = %s` for one key."""
    cond = sql.SQL(" and ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
    return sql.SQL("delete from {t} where {cond}").format(t=qualified(schema, table), cond=cond)
