"""Row-at-a-time writes through a mapping: for small jobs and tests, not the hot path.

The batch apply path (`dualsync.consumers.apply`) stages rows with COPY and writes
them set-based behind the version gate; this module writes already-mapped rows with
`executemany` and no gate, which is what loading example data or a backfill check needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from dualsync.consumers.statements import delete_sql, insert_sql, upsert_sql

if TYPE_CHECKING:
    from dualsync.schema.mapping import EntityMapping, RowSet

__all__ = ["upsert_rowsets"]


async def upsert_rowsets(
    conn: psycopg.AsyncConnection[Any], em: EntityMapping, rowsets: Sequence[RowSet]
) -> int:
    """Insert-or-update each row on its primary key and replace its child rows.

    Runs in one transaction; returns the number of parent rows written.
    """
    if not rowsets:
        return 0
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(upsert_sql(em), [rs.values for rs in rowsets])
        for child in em.children:
            await cur.executemany(
                delete_sql(child.schema, child.table, child.parent_columns),
                [rs.key for rs in rowsets],
            )
            rows = [row for rs in rowsets for row in rs.children.get(child.table, ())]
            if rows:
                await cur.executemany(insert_sql(child), rows)
    return len(rowsets)
