"""The two streams of the full sweep: every legacy record, every live target row, as
(bucket, digest contribution) pairs, a chunk at a time.

The legacy side is `store.iter_records` in store order, canonicalised as `sample.py` does
(`to_rows` of the payload, after an Extended JSON round trip unless it comes from a JSON
file; a document the mapping refuses counts as `REFUSED`). The target side pages through
the gate's live keys in key order (`key > last order by key limit n`, on row_state's
primary key) and reads each page's rows and child rows by key as `fetch.py` does. Keyset
pages rather than one server-side cursor: a cursor is one transaction, and a snapshot held
for the minutes a million rows take would keep vacuum off row_state, the hottest table of
the apply path; a page is a short index range scan, and its last key is the resume point.

Each function turns a whole chunk into its pairs before anything is added to a digest, so
a chunk is counted entirely or not at all: that is what makes the checkpoint exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from dualsync.errors import PermanentError
from dualsync.ops.verify.canon import Canonicalizer
from dualsync.ops.verify.fetch import Children, fetch_rows, target_queries
from dualsync.ops.verify.sweep_hash import REFUSED, bucket_of, bucket_sql, contribution
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.legacy import LegacyRecord

__all__ = [
    "TargetReader",
    "legacy_fingerprint",
    "legacy_pairs",
    "live_keys",
    "live_keys_in",
    "target_pairs",
]

Pairs = list[tuple[int, int]]


class TargetReader:
    """Reads target rows and child rows by canonical key; its queries are built once."""

    def __init__(self, em: Any) -> None:
        self.em = em
        self._queries = target_queries(em)

    async def fetch(
        self, conn: psycopg.AsyncConnection[Any], keys: Sequence[str]
    ) -> tuple[dict[str, tuple[Any, ...]], Children]:
        """The rows (mapping order) and child rows of `keys` (see `fetch.fetch_rows`)."""
        return await fetch_rows(conn, self.em, self._queries, keys)


def _live(after: str | None) -> tuple[sql.Composable, list[Any]]:
    if after is None:
        return sql.SQL("entity = %s and not deleted"), []
    return sql.SQL("entity = %s and not deleted and key > %s"), [after]


async def live_keys(
    conn: psycopg.AsyncConnection[Any], entity: str, after: str | None, limit: int
) -> list[str]:
    """The next `limit` live row_state keys after `after`, in key order."""
    where, extra = _live(after)
    q = sql.SQL("select key from dualsync.row_state where {} order by key limit %s").format(where)
    cur = await conn.execute(q, [entity, *extra, limit])
    return [r[0] for r in await cur.fetchall()]


async def live_keys_in(
    conn: psycopg.AsyncConnection[Any],
    entity: str,
    after: str | None,
    span: int,
    buckets: int,
    only: Sequence[int],
) -> tuple[list[str], str | None]:
    """The live keys of the buckets `only` among the next `span` live keys after `after`,
    and the last of those `span` keys (None: no more keys).

    The span is cut first (an index range scan), then filtered: a filtered `order by key
    limit n` would let the planner hash-join and sort everything after `after` for every
    page, quadratic over a table. md5 runs in Postgres, and only the wanted keys travel."""
    where, extra = _live(after)
    q = sql.SQL(
        "with span as (select key from dualsync.row_state where {} order by key limit %s) "
        "select (select max(key) from span), array(select key from span where {} in "
        "(select unnest(%s::bigint[])) order by key)"
    ).format(where, bucket_sql(buckets))
    cur = await conn.execute(q, [entity, *extra, span, list(only)])
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return [], None
    return list(row[1]), str(row[0])


def legacy_fingerprint(
    em: Any, canon: Canonicalizer, key: str, doc: dict[str, Any], *, plain_json: bool = False
) -> str:
    """The fingerprint of a legacy document under its canonical key (`REFUSED` when the
    mapping refuses it: dead-lettered, never applied). As in sample.py, a Mongo document
    is taken the way its event would arrive (an Extended JSON round trip); a JSON file's
    (`plain_json`) is plain JSON already."""
    try:
        rows = em.to_rows(key, doc if plain_json else loads_payload(dumps_payload(doc)))
        return canon.fingerprint(canon.record(rows.values, rows.children))
    except PermanentError:
        return REFUSED


def legacy_pairs(
    em: Any,
    canon: Canonicalizer,
    records: Sequence[LegacyRecord],
    buckets: int,
    *,
    plain_json: bool = False,
) -> tuple[Pairs, int]:
    """(bucket, contribution) of each record, and how many keys the key strategy refuses
    (sample.py skips those too: never applied, nothing to compare)."""
    out: Pairs = []
    skipped = 0
    for rec in records:
        try:
            key = em.canonical_key(rec.key)
        except PermanentError:
            skipped += 1
            continue
        fp = legacy_fingerprint(em, canon, key, rec.doc, plain_json=plain_json)
        out.append((bucket_of(key, buckets), contribution(key, fp)))
    return out, skipped


def target_pairs(
    canon: Canonicalizer,
    keys: Sequence[str],
    rows: dict[str, tuple[Any, ...]],
    children: Children,
    buckets: int,
) -> Pairs:
    """(bucket, contribution) of each key that has a target row (a live gate entry without
    one is what sample.py also sees as no row)."""
    out: Pairs = []
    for key in keys:
        row = rows.get(key)
        if row is None:
            continue
        fp = canon.fingerprint(canon.record(row, children.get(key, {})))
        out.append((bucket_of(key, buckets), contribution(key, fp)))
    return out
