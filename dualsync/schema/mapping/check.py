"""Does a mapping fit the live database? Every mismatch, with the line that causes it.

A mapping that names a missing column or writes text into an enum column compiles
fine and then fails on the first event, in the worker, for every event: that is a
dead-letter storm found in production. `check_mapping` finds it before: it compares a
compiled `MappingSet` with a `Catalog` snapshot (`dualsync.schema.mapping.introspect`)
and returns `Problem`s that point at the YAML line, like a compiler. Pure logic: no I/O.

Compatibility follows what the apply path does: values are staged with the mapping's
types and inserted with assignment casts, so a widening (int into bigint) is fine and a
narrowing or a cross-kind cast (text into an enum) is not. A `max_length:` that exceeds
the column's varchar(n)/char(n) is an error, one below it (or on unlimited text) a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from dualsync.schema.mapping.compiled import EntityMapping, MappingSet
from dualsync.schema.mapping.introspect import Catalog, DbColumn
from dualsync.schema.mapping.lines import Loc, line_of
from dualsync.schema.mapping.rows import ChildMapping, ColumnSpec

__all__ = ["Level", "Problem", "check_mapping", "schemas_of"]

Level = Literal["error", "warning"]

_TEXT: Final = frozenset({"text", "varchar", "bpchar", "citext"})
_ANY_INT: Final = frozenset({"int2", "int4", "int8"})
_INTEGERS: Final = frozenset({"smallint", "integer", "bigint"})
#: compiled `pg_type` -> the `typname`s a value of it can be written to
_COMPATIBLE: Final[dict[str, frozenset[str]]] = {
    "text": _TEXT,
    "smallint": _ANY_INT,
    "integer": frozenset({"int4", "int8"}),
    "bigint": frozenset({"int8"}),
    "numeric": frozenset({"numeric"}),
    "double precision": frozenset({"float8", "float4"}),
    "boolean": frozenset({"bool"}),
    "timestamptz": frozenset({"timestamptz"}),
    "date": frozenset({"date"}),
    "time": frozenset({"time", "timetz"}),
    "uuid": frozenset({"uuid"}),
    "jsonb": frozenset({"jsonb", "json"}),
    "inet": frozenset({"inet"}),
    "bytea": frozenset({"bytea"}),
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One mismatch between a mapping file and the database."""

    path: str
    line: int
    entity: str
    message: str
    level: Level = "error"

    def __str__(self) -> str:
        tag = "warning: " if self.level == "warning" else ""
        return f"{self.path}:{self.line}: {self.entity}: {tag}{self.message}"


@dataclass(frozen=True, slots=True)
class _Want:
    """A column the mapping writes: what it writes and where the mapping says so."""

    name: str
    what: str  # the mapping's type, for messages: `text`, `ref`, `key`, `extra`, ...
    pg_type: str  # the compiled Postgres type (`integer`, `vector(3)`, an enum name)
    loc: Loc
    any_int: bool = False  # keys and positions: any integer width fits
    nullable: bool = False
    enum_values: tuple[str, ...] | None = None
    max_length: int | None = None  # `text` columns: the mapping's varchar(n) length


class _Checker:
    def __init__(self, ms: MappingSet, catalog: Catalog) -> None:
        self.ms = ms
        self.catalog = catalog
        self.problems: list[Problem] = []
        self.entity = ""

    def line(self, loc: Loc) -> int:
        return line_of(self.ms.lines, loc)

    def add(self, loc: Loc, message: str, level: Level = "error") -> None:
        self.problems.append(
            Problem(str(self.ms.path), self.line(loc), self.entity, message, level)
        )

    def table(self, schema: str, table: str, wants: list[_Want], loc: Loc, table_loc: Loc) -> None:
        if schema not in self.catalog.schemas:
            self.add(table_loc, f"schema {schema} does not exist (table {table})")
            return
        cols = self.catalog.tables.get((schema, table))
        if cols is None:
            self.add(table_loc, f"table {schema}.{table} does not exist")
            return
        for w in wants:
            db = cols.get(w.name)
            if db is None:
                self.add(w.loc, f"column {w.name} does not exist in {schema}.{table}")
            else:
                self.column(schema, table, w, db)
        filled = {w.name for w in wants}
        for db in cols.values():
            if db.name not in filled and db.not_null and not db.has_default:
                self.add(
                    loc,
                    f"column {db.name} of {schema}.{table} is NOT NULL without a default, "
                    "and the mapping does not fill it",
                )

    def column(self, schema: str, table: str, w: _Want, db: DbColumn) -> None:
        where = f"{schema}.{table}.{w.name}"
        if w.enum_values is not None:
            self.enum(where, schema, w, db)
        elif w.pg_type.startswith("vector("):
            self.vector(where, w, db)
        elif w.pg_type == "text[]":
            if db.element not in _TEXT:
                self.add(w.loc, f"column {where} is {db.display}, but the mapping writes text[]")
        elif w.pg_type == "timestamptz" and db.type_name == "timestamp":
            self.add(
                w.loc,
                f"column {where} is timestamp without time zone: UTC instants are stored as "
                "wall-clock times of the session time zone; prefer timestamptz",
                "warning",
            )
        else:
            # A type this table does not list yet fits only the column type of that name.
            ok = _COMPATIBLE.get(w.pg_type, frozenset({w.pg_type}))
            if w.any_int and w.pg_type in _INTEGERS:
                ok = _ANY_INT
            if db.type_name not in ok:
                self.add(
                    w.loc,
                    f"column {where} is {db.display}, but the mapping writes {w.what}"
                    + (f" ({w.pg_type})" if w.pg_type != w.what else ""),
                )
            elif w.what == "text" and w.max_length is not None:
                self.length(where, w, w.max_length, db)
        if w.nullable and db.not_null:
            self.add(w.loc, _null_warning(where, w), "warning")

    def length(self, where: str, w: _Want, mine: int, db: DbColumn) -> None:
        """The mapping's `max_length` against the column's varchar(n)/char(n)."""
        n, loc = db.max_length, (*w.loc, "max_length")
        said = f"column {where} is {db.display}"
        if n is None:
            self.add(
                loc,
                f"{said} (no length limit), but the mapping's max_length is {mine}: longer "
                "values fit the column and are refused; drop max_length, or keep it on purpose",
                "warning",
            )
        elif mine > n:
            self.add(
                loc,
                f"{said}, but the mapping's max_length is {mine}: values of "
                f"{_span(n + 1, mine)} characters would fail in PostgreSQL; set max_length: {n}",
            )
        elif mine < n:
            self.add(
                loc,
                f"{said}, but the mapping's max_length is {mine}: values of "
                f"{_span(mine + 1, n)} characters fit the column and are refused; "
                f"set max_length: {n}",
                "warning",
            )

    def vector(self, where: str, w: _Want, db: DbColumn) -> None:
        dim = int(w.pg_type[len("vector(") : -1])
        if db.type_name != "vector":
            self.add(w.loc, f"column {where} is {db.display}, but the mapping writes vector")
        elif db.typmod != dim:
            got = f"{db.typmod} dimensions" if db.typmod > 0 else "no fixed dimension"
            self.add(
                (*w.loc, "dim"),
                f"column {where} is {db.display} ({got}), but the mapping has dim {dim}",
            )

    def enum(self, where: str, schema: str, w: _Want, db: DbColumn) -> None:
        name = w.pg_type
        nsp, dot, typ = name.rpartition(".")
        # An unqualified name is looked up in the table's schema, the mapping's, then public.
        candidates = [(nsp, typ)] if dot else [(s, typ) for s in (schema, self.ms.schema, "public")]
        found = next((c for c in candidates if c in self.catalog.enums), None)
        if found is None:
            self.add((*w.loc, "enum"), f"enum type {name} does not exist")
            return
        if db.kind != "e" or (db.type_schema, db.type_name) != found:
            self.add(
                w.loc,
                f"column {where} is {db.display}, but the mapping writes enum "
                f"{found[0]}.{found[1]}",
            )
        labels = set(self.catalog.enums[found])
        for i, value in enumerate(w.enum_values or ()):
            if value not in labels:
                self.add(
                    (*w.loc, "values", i),
                    f"enum value {value!r} is not a label of {found[0]}.{found[1]} "
                    f"(labels: {', '.join(self.catalog.enums[found])})",
                )


def _span(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo} to {hi}"


def _null_warning(where: str, w: _Want) -> str:
    if w.what == "extra":
        return (
            f"column {where} is NOT NULL, but the mapping writes null into it when a "
            "document has no unmapped fields"
        )
    return (
        f"column {where} is NOT NULL, but the mapping lets {w.name} be null (nullable: true "
        "is the default): add nullable: false, so a missing field is a mapping error "
        "instead of a failed insert"
    )


def _declared_values(ms: MappingSet, loc: Loc, spec: ColumnSpec) -> tuple[str, ...]:
    """The `values` listed on this very column (falls back to the enum's merged labels)."""
    model = ms.model
    if model is not None:
        em = model.entities[str(loc[1])]
        if loc[2] == "children":
            col = em.children[int(loc[3])].columns[spec.name]
        else:
            col = em.columns[spec.name]
        return tuple(col.values or ())
    dom = ms.enums.get(spec.pg_type)
    return tuple(sorted(dom.labels or ())) if dom is not None else ()


def _mapped(ms: MappingSet, base: Loc, cols: tuple[ColumnSpec, ...]) -> list[_Want]:
    out = []
    for c in cols:
        loc = (*base, "columns", c.name)
        values = _declared_values(ms, loc, c) if c.type == "enum" else None
        out.append(
            _Want(c.name, c.type, c.pg_type, loc, any_int=c.type == "ref",
                  nullable=c.nullable, enum_values=values, max_length=c.max_length)
        )  # fmt: skip
    return out


def _entity_wants(ms: MappingSet, em: EntityMapping) -> list[_Want]:
    base: Loc = ("entities", em.name)
    key_types = em.pg_types[: len(em.key_columns)]
    single = len(em.key_columns) == 1
    wants = []
    for i, (name, pg) in enumerate(zip(em.key_columns, key_types, strict=True)):
        loc = (*base, "key", "column") if single else (*base, "key", "columns", i)
        wants.append(_Want(name, "key", pg, loc, any_int=True))
    wants += _mapped(ms, base, em.columns)
    if em.extra is not None:
        wants.append(_Want(em.extra, "extra", "jsonb", (*base, "extra"), nullable=True))
    return wants


def _child_wants(ms: MappingSet, base: Loc, ch: ChildMapping) -> list[_Want]:
    # column_names = parent columns, [own key], [order column], then the mapped columns
    # (build.py): the first `fixed` are filled by dualsync itself.
    wants = []
    one_parent = len(ch.parent_columns) == 1
    fixed = len(ch.column_names) - len(ch.columns)
    for i, (name, pg) in enumerate(zip(ch.column_names[:fixed], ch.pg_types, strict=False)):
        if i < len(ch.parent_columns):
            loc = (*base, "parent_column") if one_parent else (*base, "parent_columns", i)
        elif name == ch.order_column:
            loc = (*base, "order_column")
        else:
            loc = (*base, "key", "column")
        wants.append(_Want(name, "key", pg, loc, any_int=True))
    return wants + _mapped(ms, base, ch.columns)


def check_mapping(ms: MappingSet, catalog: Catalog) -> list[Problem]:
    """Every problem of `ms` against `catalog`, in file order (errors and warnings)."""
    c = _Checker(ms, catalog)
    for em in ms.entities.values():
        c.entity = em.name
        base: Loc = ("entities", em.name)
        c.table(em.schema, em.table, _entity_wants(ms, em), base, (*base, "table"))
        for i, ch in enumerate(em.children):
            cbase: Loc = (*base, "children", i)
            c.table(ch.schema, ch.table, _child_wants(ms, cbase, ch), cbase, (*cbase, "table"))
    return sorted(c.problems, key=lambda p: p.line)


def schemas_of(ms: MappingSet) -> set[str]:
    """The schemas whose tables `ms` writes."""
    return {em.schema for em in ms.entities.values()} | {
        ch.schema for em in ms.entities.values() for ch in em.children
    }
