"""The data of bench/verify_sweep_rss.py: a tiny `items` mapping, its target filled by one
`generate_series` insert with three planted differences, and its legacy side as json_lines
files or as a store computing the same documents from their keys (which holds nothing)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg

from dualsync.ops.databases import fresh_database
from dualsync.producers.stores import FileStore
from dualsync.schema.legacy import LegacyRecord
from dualsync.schema.migrate import Migrator, core_set

__all__ = ["MAPPING", "PER_FILE", "SyntheticStore", "doc_of", "index_of", "key_of", "setup"]

PER_FILE = 10_000
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
MAPPING = """version: 1
app: sweepbench
schema: public
entities:
  items:
    table: items
    source: {json_lines: {glob: "items/*.jsonl"}}
    key: {column: id, strategy: text}
    columns:
      name:       {from: name, type: text, nullable: false}
      qty:        {from: qty, type: int}
      price:      {from: price, type: numeric}
      updated_at: {from: updated_at, type: timestamptz, nullable: false}
      tags:       {from: tags, type: jsonb}
"""
_KEY = "format('items-%s.jsonl:%s', lpad((i / 10000)::text, 4, '0'), i % 10000 + 1)"
TARGET = f"""create table items (id text primary key, name text not null, qty integer,
  price numeric(12, 2), updated_at timestamptz not null, tags jsonb);
insert into items select {_KEY}, 'item ' || i, case when i % 17 = 0 then null else i % 100 end,
  (i % 100000) / 100.0, '2025-01-01T00:00:00Z'::timestamptz + i * interval '1 second',
  jsonb_build_object('a', i, 'b', 'x' || (i % 11)) from generate_series(0, :rows - 1) i;
insert into dualsync.row_state (entity, key, version)
  select 'items', {_KEY}, 1 from generate_series(0, :rows - 1) i;
analyze items; analyze dualsync.row_state"""  # noqa: S608 - a constant, no input


def key_of(i: int) -> str:
    return f"items-{i // PER_FILE:04d}.jsonl:{i % PER_FILE + 1}"


def doc_of(i: int) -> dict[str, Any]:
    return {"name": f"item {i}", "qty": None if i % 17 == 0 else i % 100,
            "price": (i % 100_000) / 100, "tags": {"a": i, "b": f"x{i % 11}"},
            "updated_at": (EPOCH + dt.timedelta(seconds=i)).isoformat()}  # fmt: skip


def index_of(key: str) -> int | None:
    name, _, line = key.rpartition(":")
    if not name.startswith("items-") or not line.isdigit():
        return None
    return int(name[6:10]) * PER_FILE + int(line) - 1


class SyntheticStore(FileStore):
    """The json_lines documents computed from their keys: a store that holds nothing (a
    FileStore: its documents are plain JSON, taken without the Extended JSON round trip)."""

    def __init__(self, rows: int) -> None:
        super().__init__("items")
        self.rows = rows

    def _rec(self, i: int) -> LegacyRecord:
        return LegacyRecord(key_of(i), doc_of(i))

    def _keys(self) -> list[str]:
        return [key_of(i) for i in range(self.rows)]

    def _get(self, key: str) -> LegacyRecord | None:
        i = index_of(key)
        return self._rec(i) if i is not None and i < self.rows else None

    def _spans(self, after: str | None, chunk: int) -> list[range]:
        i = index_of(after) if after is not None else None
        lo = 0 if i is None else i + 1
        return [range(j, min(j + chunk, self.rows)) for j in range(lo, self.rows, chunk)]

    async def iter_records(
        self, after: str | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[LegacyRecord]]:
        for span in self._spans(after, chunk):
            yield [self._rec(i) for i in span]

    async def iter_keys(
        self, after: str | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[str]]:
        for span in self._spans(after, chunk):
            yield [key_of(i) for i in span]

    async def get_many(self, keys: Sequence[str]) -> dict[str, LegacyRecord]:
        found = ((k, index_of(k)) for k in keys)
        return {k: self._rec(i) for k, i in found if i is not None and i < self.rows}

    async def count(self) -> int:
        return self.rows


def setup(server: str, tmp: Path, rows: int) -> tuple[str, Path, dict[str, str]]:
    """The database (target filled, three differences planted) and the legacy tree."""
    db = fresh_database(server, "bench_sweep")
    Migrator(db, [core_set()]).up()
    plants = {"changed": key_of(rows // 3), "missing": key_of(rows // 2),
              "extra": "items-9999.jsonl:1"}  # fmt: skip
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(TARGET.replace(":rows", str(int(rows))).encode())
        conn.execute(b"update items set name = 'changed' where id = %s", [plants["changed"]])
        conn.execute(b"delete from items where id = %s", [plants["missing"]])
        conn.execute(b"insert into items (id, name, updated_at) values (%s, 'extra', now())",
                     [plants["extra"]])  # fmt: skip
        conn.execute(b"insert into dualsync.row_state (entity, key, version) values "
                     b"('items', %s, 1)", [plants["extra"]])  # fmt: skip
    root = tmp / "legacy"
    (root / "items").mkdir(parents=True)
    (root / "mapping.yaml").write_text(MAPPING)
    for lo in range(0, rows, PER_FILE):
        lines = (orjson.dumps(doc_of(i)) for i in range(lo, min(lo + PER_FILE, rows)))
        (root / "items" / f"items-{lo // PER_FILE:04d}.jsonl").write_bytes(
            b"\n".join(lines) + b"\n"
        )
    return db, root, plants
