"""Temp staging tables and COPY: how a batch reaches Postgres without per-row round trips.

Staging tables are `temp ... on commit delete rows`, created once per connection (the
pool keeps connections, so this is a one-time cost) and emptied by every commit or
rollback. Names are positional (`ds_s3`, `ds_c3_0`) because entity names can be 63
characters long, leaving no room for a prefix.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["GATE", "WINNERS", "StageTable", "copy_rows", "ensure_tables"]

_created: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], set[str]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True, slots=True)
class StageTable:
    """A temp table: `_ds_key text` followed by the given columns and their types."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]

    def ddl(self) -> sql.Composed:
        """`create temp table if not exists ...`."""
        cols = [sql.SQL("_ds_key text")] + [
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
            for c, t in zip(self.columns, self.types, strict=True)
        ]
        return sql.SQL("create temp table if not exists {} ({}) on commit delete rows").format(
            sql.Identifier(self.name), sql.SQL(", ").join(cols)
        )

    def copy_sql(self) -> sql.Composed:
        """`copy <name> (_ds_key, cols...) from stdin`."""
        return sql.SQL("copy {} ({}) from stdin").format(
            sql.Identifier(self.name),
            sql.SQL(", ").join(map(sql.Identifier, ("_ds_key", *self.columns))),
        )


GATE = StageTable(
    "ds_gate", ("entity", "version", "deleted", "event_id"), ("text", "bigint", "boolean", "text")
)
WINNERS = StageTable("ds_win", ("entity", "deleted"), ("text", "boolean"))


async def ensure_tables(conn: psycopg.AsyncConnection[Any], tables: Iterable[StageTable]) -> None:
    """Create the staging tables this connection has not created yet."""
    done = _created.setdefault(conn, set())
    missing = [t for t in tables if t.name not in done]
    if not missing:
        return
    async with conn.cursor() as cur:
        for t in missing:
            await cur.execute(t.ddl())
    done.update(t.name for t in missing)


def forget(conn: psycopg.AsyncConnection[Any]) -> None:
    """Drop the record of created tables (after a rollback of the creating transaction)."""
    _created.pop(conn, None)


async def copy_rows(
    cur: psycopg.AsyncCursor[Any], table: StageTable, rows: Sequence[Sequence[Any]]
) -> None:
    """COPY rows (each starting with the legacy key) into a staging table."""
    if not rows:
        return
    async with cur.copy(table.copy_sql()) as copy:
        for row in rows:
            await copy.write_row(row)
