"""Temp staging tables and COPY: how a batch reaches Postgres without per-row round trips.

Staging tables are `temp ... on commit delete rows`, created once per connection (the
pool keeps connections, so this is a one-time cost) and emptied by every commit or
rollback. Names are positional (`ds_s3`, `ds_c3_0`) because entity names can be 63
characters long, leaving no room for a prefix.

Rows travel in COPY's binary format when every column of the table has a binary dumper
for the value its coercer returns (`binary_types`): no text rendering of timestamps,
numerics, jsonb or vectors on either side. Staging columns are typed by the mapping, not
by the target (the insert casts), so the set of types is closed: enum labels go as text
(`enum_recv` reads the label), vectors need pgvector's dumper on the connection. A table
with a column outside that set (`time`, `inet`) keeps the text format.

A vector travels as pgvector's binary value (dimensions, 0, big-endian float4s). Its
coercer hands over a list of floats, which pgvector's own dumper copies twice
(`array('f')`, then byte-swapped) at ~17 µs for 1536 dimensions; `_VectorDumper` packs
the same bytes in one `struct` call (~8 µs), and hands anything else (a value that does
not pack: not a number, out of float4 range, too many dimensions) to pgvector's dumper,
so what reaches Postgres, and every error, is pgvector's. A `PackedVector` (a BSON binary
vector, already in pgvector's binary form) is written as it is, in a COPY and as a query
parameter (`register_packed_vectors`).
"""

from __future__ import annotations

import struct
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from pgvector.psycopg.vector import VectorBinaryDumper
from psycopg import pq, sql
from psycopg.abc import AdaptContext, Buffer

from dualsync.schema.mapping.coerce_vector import PackedVector

__all__ = [
    "WINNERS",
    "StageTable",
    "binary_types",
    "can_copy_binary",
    "copy_binary",
    "copy_rows",
    "copy_sql",
    "ensure_tables",
    "register_packed_vectors",
    "vector_text",
]

_created: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], set[str]] = (
    weakref.WeakKeyDictionary()
)

#: staging (mapping) type -> the binary dumper that writes its coercer's Python value
_BINARY: Final = {
    "text": "text",
    "smallint": "int2",
    "integer": "int4",
    "bigint": "int8",
    "numeric": "numeric",
    "double precision": "float8",
    "boolean": "bool",
    "timestamptz": "timestamptz",
    "date": "date",
    "uuid": "uuid",
    "jsonb": "jsonb",
    "bytea": "bytea",
    "text[]": "text[]",
}
#: mapping types whose values have no binary dumper we trust (tz-aware times, networks)
_TEXT_ONLY: Final = frozenset({"time", "inet"})


def binary_types(types: Sequence[str]) -> tuple[str, ...] | None:
    """Dumper names for a binary COPY of columns of these staging types, or None when one
    of them must travel as text. Anything not a built-in mapping type is an enum."""
    out = []
    for t in types:
        if t in _TEXT_ONLY:
            return None
        out.append("vector" if t.startswith("vector") else _BINARY.get(t, "text"))
    return tuple(out)


def vector_text(value: Any) -> Any:
    """A vector's text form (`[1.0,2.0]`): psycopg's text COPY has no list -> vector."""
    if isinstance(value, PackedVector):
        value = value.to_list()
    if isinstance(value, list | tuple):
        return "[" + ",".join(repr(float(v)) for v in value) + "]"
    return value


@dataclass(frozen=True, slots=True)
class StageTable:
    """A temp table: `_ds_key text` followed by the given columns and their types."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    #: binary dumper names of (_ds_key, *columns), None: text COPY
    binary: tuple[str, ...] | None = field(init=False)
    #: row positions (0 is _ds_key) of vector columns, rendered as text in a text COPY
    vectors: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        kinds = binary_types(("text", *self.types))
        object.__setattr__(self, "binary", kinds)
        vec = frozenset(i + 1 for i, t in enumerate(self.types) if t.startswith("vector"))
        object.__setattr__(self, "vectors", vec)

    def ddl(self) -> sql.Composed:
        """`create temp table if not exists ...`."""
        cols = [sql.SQL("_ds_key text")] + [
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
            for c, t in zip(self.columns, self.types, strict=True)
        ]
        return sql.SQL("create temp table if not exists {} ({}) on commit delete rows").format(
            sql.Identifier(self.name), sql.SQL(", ").join(cols)
        )

    def copy_sql(self, *, binary: bool = False) -> sql.Composed:
        """`copy <name> (_ds_key, cols...) from stdin`, in binary format if asked."""
        return copy_sql(sql.Identifier(self.name), ("_ds_key", *self.columns), binary=binary)


def copy_sql(table: sql.Identifier, columns: Sequence[str], *, binary: bool) -> sql.Composed:
    """`copy <table> (columns...) from stdin`, in binary format if asked."""
    return sql.SQL("copy {} ({}) from stdin{}").format(
        table,
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(" (format binary)" if binary else ""),
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


def _oids(cur: psycopg.AsyncCursor[Any], kinds: tuple[str, ...] | None) -> list[int] | None:
    """The oids of a binary COPY's dumpers; None (text) when the connection lacks one
    (pgvector not registered on it)."""
    if kinds is None:
        return None
    registry = cur.adapters.types
    out = []
    for k in kinds:
        info = registry.get(k)
        if info is None:
            return None
        out.append(info.array_oid if k.endswith("[]") else info.oid)
    return out


#: `struct` packers of a vector's binary value, by dimension (a column has one)
_PACKERS: dict[int, struct.Struct] = {}
_MAX_PACKERS: Final = 64
#: dumper classes bound to the vector oid of a database
_VECTOR_DUMPERS: dict[int, type[VectorBinaryDumper]] = {}


def _packer(dims: int) -> struct.Struct:
    packer = _PACKERS.get(dims)
    if packer is None:
        packer = struct.Struct(f">HH{dims}f")
        if len(_PACKERS) < _MAX_PACKERS:
            _PACKERS[dims] = packer
    return packer


class _VectorDumper(VectorBinaryDumper):
    """pgvector's binary dumper, with a list of floats packed in one `struct` call.

    `struct`'s float4 is C's double-to-float conversion, the one `array('f')` does, so
    the bytes are pgvector's; a list `struct` refuses (an element that is not a number,
    or beyond float4's range, which pgvector turns into infinity for Postgres to reject;
    more than 65535 dimensions) goes to pgvector's dumper, which writes or raises as
    it always has."""

    def dump(self, obj: Any) -> Buffer | None:
        if type(obj) is PackedVector:
            return obj
        if type(obj) is list:
            dims = len(obj)
            try:
                return _packer(dims).pack(dims, 0, *obj)
            except (struct.error, OverflowError):
                pass
        return super().dump(obj)


def _vector_dumper(oid: int) -> type[VectorBinaryDumper]:
    cls = _VECTOR_DUMPERS.get(oid)
    if cls is None:
        cls = type("VectorDumper", (_VectorDumper,), {"oid": oid})
        _VECTOR_DUMPERS[oid] = cls
    return cls


def register_packed_vectors(context: AdaptContext, oid: int) -> None:
    """Let `context` (a connection) send `PackedVector` parameters as vectors of `oid`
    (without it psycopg would send the bytes subclass as bytea). The dumper is
    `_VectorDumper`, which is then also the connection's binary dumper of that oid: the
    same bytes as pgvector's for everything else."""
    context.adapters.register_dumper(PackedVector, _vector_dumper(oid))


def _use_vector_dumper(cur: psycopg.AsyncCursor[Any], kinds: tuple[str, ...]) -> None:
    """Make the cursor's binary COPYs dump vectors with `_VectorDumper` (by oid only:
    parameters of queries keep pgvector's dumpers)."""
    info = cur.adapters.types.get("vector")
    if info is None or "vector" not in kinds:
        return
    cls = _vector_dumper(info.oid)
    if cur.adapters.get_dumper_by_oid(info.oid, pq.Format.BINARY) is not cls:
        cur.adapters.register_dumper(None, cls)


def _text_rows(table: StageTable, rows: Sequence[Sequence[Any]]) -> Iterable[Sequence[Any]]:
    if not table.vectors:
        return rows
    vec = table.vectors
    return (tuple(vector_text(v) if i in vec else v for i, v in enumerate(r)) for r in rows)


def can_copy_binary(cur: psycopg.AsyncCursor[Any], kinds: tuple[str, ...]) -> bool:
    """Whether the connection has a binary dumper for each of these kinds."""
    return _oids(cur, kinds) is not None


async def copy_binary(
    cur: psycopg.AsyncCursor[Any],
    stmt: sql.Composed,
    kinds: tuple[str, ...],
    rows: Iterable[Sequence[Any]],
) -> bool:
    """A binary COPY (`stmt`, which says `format binary`) of rows with these dumpers; False,
    with nothing sent, when the connection lacks one of them (pgvector not registered)."""
    oids = _oids(cur, kinds)
    if oids is None:
        return False
    if "vector" in kinds:
        _use_vector_dumper(cur, kinds)
    async with cur.copy(stmt) as copy:
        copy.set_types(oids)
        for row in rows:
            await copy.write_row(row)
    return True


async def copy_rows(
    cur: psycopg.AsyncCursor[Any], table: StageTable, rows: Sequence[Sequence[Any]]
) -> None:
    """COPY rows (each starting with the legacy key) into a staging table."""
    if not rows:
        return
    if table.binary is not None and await copy_binary(
        cur, table.copy_sql(binary=True), table.binary, rows
    ):
        return
    async with cur.copy(table.copy_sql()) as copy:
        for row in _text_rows(table, rows):
            await copy.write_row(row)
