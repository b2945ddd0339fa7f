"""Row building: column getters, per-column coercion and child-table explosion.

Everything here runs per event on the worker's hot path; it was decided at load time
(paths split, coercers picked) by `dualsync.schema.mapping.build`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from dualsync.schema.mapping.coerce import CoercionError
from dualsync.schema.mapping.errors import MappingError

__all__ = ["MISSING", "ChildMapping", "ColumnSpec", "Getter", "RowSet", "getter", "row_values"]

MISSING: Final = object()
#: the payload field a non-object record travels in (see `$value`)
VALUE: Final = "value"
_SHOWN: Final = 80
Getter = Callable[[Any, str, int], Any]


class RowSet(NamedTuple):
    """The rows one document becomes (a tuple: one is built per event)."""

    entity: str
    key: tuple[Any, ...]
    values: tuple[Any, ...]
    children: dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One compiled target column."""

    name: str
    source: str
    type: str
    pg_type: str
    nullable: bool
    secret: bool
    line: int
    getter: Getter = field(repr=False, compare=False)
    coerce: Callable[[Any], Any] = field(repr=False, compare=False)
    #: `text` with `max_length:`: the varchar(n)/char(n) length the coercer enforces
    max_length: int | None = None
    #: the document field read, when the source is one plain name (the hot path reads it
    #: with `dict.get` instead of calling the getter)
    field: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        plain = "." not in self.source and not self.source.startswith("$")
        object.__setattr__(self, "field", self.source if plain else None)


def getter(source: str) -> Getter:
    # Every getter takes (document, legacy key, array index) and uses what it needs.
    if source == "$key":
        return lambda _doc, key, _idx: key
    if source == "$value":
        # A record that is not an object (tzurot's aliases.json `{alias: fullName}`) is
        # published as `{"value": <record>}` by the adapters; `$value` is the record itself.
        return lambda doc, _key, _idx: doc.get(VALUE, MISSING) if isinstance(doc, dict) else doc
    if source == "$index":
        return lambda _doc, _key, idx: idx
    parts = source.split(".")
    if len(parts) == 1:
        p = parts[0]
        return lambda doc, _key, _idx: doc.get(p, MISSING) if isinstance(doc, dict) else MISSING

    def get(doc: Any, _key: str, _idx: int) -> Any:
        for p in parts:
            if not isinstance(doc, dict):
                return MISSING
            doc = doc.get(p, MISSING)
            if doc is MISSING:
                return MISSING
        return doc

    return get


def _shown(value: Any) -> str:
    # Objects and arrays are described, never quoted: a nested field may be secret (a
    # mapping can mark `requestDetails.email` while the column takes `requestDetails`),
    # and error text reaches logs and dead letters.
    if isinstance(value, dict):
        return f"<object with {len(value)} keys>"
    if isinstance(value, list | tuple):
        return f"<array of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


#: what `_fast_values` reads of each column, as plain tuples (a tuple's items unpack
#: faster than three slot reads per column and row), by the identity of the columns
_Plan = tuple[tuple[str | None, Getter, bool, Callable[[Any], Any]], ...]
_PLANS: dict[int, tuple[tuple[ColumnSpec, ...], _Plan]] = {}
_MAX_PLANS: Final = 4096  # column sets of every mapping loaded; emptied when full


def _plan(cols: tuple[ColumnSpec, ...]) -> _Plan:
    hit = _PLANS.get(id(cols))
    if hit is not None and hit[0] is cols:
        return hit[1]
    plan = tuple((c.field, c.getter, c.nullable, c.coerce) for c in cols)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[id(cols)] = (cols, plan)  # keeps `cols` alive: its id is not reused meanwhile
    return plan


def _fast_values(doc: dict[str, Any], key: str, idx: int, cols: tuple[ColumnSpec, ...]) -> Any:
    """The values when every column is present (or nullable); None otherwise. Coercers
    raise as they do."""
    out: list[Any] = []
    append = out.append
    get = doc.get
    for f, read, nullable, coerce in _plan(cols):
        v = get(f, MISSING) if f is not None else read(doc, key, idx)
        if v is MISSING or v is None:
            if not nullable:
                return None
            append(None)
        else:
            append(coerce(v))
    return out


def row_values(
    entity: str, key: str, doc: Any, idx: int, cols: tuple[ColumnSpec, ...]
) -> list[Any]:
    """The coerced values of `cols` for one document (or array element).

    The common case (an object, every value present or allowed to be null, every coercion
    succeeding) runs a tight loop; anything else runs the exact loop again from the start,
    which raises the error naming the field (coercers are pure, so the rerun meets the
    same values)."""
    if type(doc) is dict:
        try:
            out: list[Any] | None = _fast_values(doc, key, idx, cols)
        except (ValueError, ArithmeticError, TypeError):
            out = None
        if out is not None:
            return out
    return _exact_values(entity, key, doc, idx, cols)


def _exact_values(
    entity: str, key: str, doc: Any, idx: int, cols: tuple[ColumnSpec, ...]
) -> list[Any]:
    """`row_values`, column by column, raising `MappingError` for the first bad one."""
    out: list[Any] = []
    for c in cols:
        v = c.getter(doc, key, idx)
        if v is MISSING or v is None:
            if not c.nullable:
                what = "missing" if v is MISSING else "null"
                raise MappingError(
                    f"{entity} {key!r}: field {c.source!r} -> column {c.name}: {what}, "
                    "but the column is not nullable",
                    entity=entity, key=key, field=c.source,
                )  # fmt: skip
            out.append(None)
            continue
        try:
            out.append(c.coerce(v))
        except (ValueError, ArithmeticError, TypeError) as exc:
            # CoercionError is a ValueError; the others are a safety net: a coercer that
            # trips over an input must make a MappingError (dead letter), never a crash.
            # Only our own messages are quoted: another exception's text may echo the value.
            # Coercers never quote the value; it is added here, and only when not secret.
            why = (
                exc if isinstance(exc, CoercionError) else f"cannot convert ({type(exc).__name__})"
            )
            shown = "" if c.secret else f" (value {_shown(v)})"
            raise MappingError(
                f"{entity} {key!r}: field {c.source!r} -> column {c.name} ({c.type}): {why}{shown}",
                entity=entity, key=key, field=c.source,
            ) from None  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class ChildMapping:
    """An array exploded into a child table, replaced wholesale on each parent upsert."""

    table: str
    schema: str
    source: str
    parent_columns: tuple[str, ...]
    key_columns: tuple[str, ...]
    column_names: tuple[str, ...]
    pg_types: tuple[str, ...]
    order_column: str | None
    own_key: Callable[[str], Any] | None = field(repr=False, compare=False)
    own_key_getter: Getter | None = field(repr=False, compare=False)
    columns: tuple[ColumnSpec, ...] = ()
    items: Getter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", getter(self.source))  # decided once, not per row

    def rows(
        self, entity: str, key: str, parent_key: tuple[Any, ...], doc: Any
    ) -> list[tuple[Any, ...]]:
        """The child rows of one parent document."""
        items = self.items(doc, key, 0)
        if items is MISSING or items is None:
            return []
        if not isinstance(items, list):
            raise MappingError(
                f"{entity} {key!r}: field {self.source!r} -> child table {self.table}: "
                "expected an array",
                entity=entity, key=key, field=self.source,
            )  # fmt: skip
        out = []
        own_key, own_key_getter = self.own_key, self.own_key_getter
        ordered = self.order_column is not None
        cols = self.columns
        for i, item in enumerate(items):
            row: list[Any] = list(parent_key)
            if own_key is not None and own_key_getter is not None:
                raw = own_key_getter(item, key, i)
                if raw is MISSING or raw is None:
                    raise MappingError(
                        f"{entity} {key!r}: {self.source}[{i}] has no key for child table "
                        f"{self.table}",
                        entity=entity, key=key, field=self.source,
                    )  # fmt: skip
                try:
                    row.append(own_key(str(raw)))
                except ValueError as exc:
                    raise MappingError(
                        f"{entity} {key!r}: {self.source}[{i}]: the key for child table "
                        f"{self.table} {exc}",
                        entity=entity, key=key, field=self.source,
                    ) from None  # fmt: skip
            if ordered:
                row.append(i)
            row.extend(row_values(entity, key, item, i, cols))
            out.append(tuple(row))
        return out
