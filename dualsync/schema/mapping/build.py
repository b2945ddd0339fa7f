"""Compile a validated mapping file into `EntityMapping`s: decide everything once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dualsync.redact import is_secret_name
from dualsync.schema.mapping.coerce import (
    COERCERS,
    PG_TYPES,
    CoercionError,
    EnumDomain,
    bytea_coercer,
    text_coercer,
    vector_coercer,
)
from dualsync.schema.mapping.coerce_time import timestamptz_coercer
from dualsync.schema.mapping.compiled import EntityMapping, MappingSet
from dualsync.schema.mapping.errors import MappingFileError
from dualsync.schema.mapping.extra import Unmapped
from dualsync.schema.mapping.keys import KEY_PG_TYPES, key_function
from dualsync.schema.mapping.lines import Lines, Loc, file_error
from dualsync.schema.mapping.model import (
    ChildModel,
    ColumnModel,
    EntityModel,
    KeyModel,
    MappingFileModel,
)
from dualsync.schema.mapping.rows import ChildMapping, ColumnSpec, getter

__all__ = ["compile_mapping"]


class _Compiler:
    """Builds columns; needs every entity's key function for `ref` columns."""

    def __init__(self, model: MappingFileModel, path: Path, lines: Lines) -> None:
        self.model = model
        self.path = path
        self.lines = lines
        self.enums: dict[str, EnumDomain] = {}

    def fail(self, msg: str, loc: Loc) -> MappingFileError:
        return file_error(msg, self.path, self.lines, loc)

    def key_fn(self, entity: str, loc: Loc) -> tuple[Callable[[str], Any], str]:
        em = self.model.entities.get(entity)
        if em is None:
            raise self.fail(f"ref to unknown entity {entity!r}", loc)
        k = em.key
        if k.columns:
            raise self.fail(f"ref to {entity!r}, whose key is composite, is not supported", loc)
        return key_function(k.strategy, k.namespace or f"{self.model.app}/{entity}"), KEY_PG_TYPES[
            k.strategy
        ]

    def column(self, name: str, col: ColumnModel, secret: bool, loc: Loc) -> ColumnSpec:
        line = self.lines.get(loc, 0)
        if col.type == "enum":
            assert col.enum is not None  # noqa: S101 - validated by the model
            dom = self.enums.setdefault(col.enum, EnumDomain(col.enum, None))
            if col.values is not None:
                dom.labels = frozenset(col.values) | (dom.labels or frozenset())
            coerce: Callable[[Any], Any] = dom.check
            pg = col.enum
        elif col.type == "ref":
            assert col.entity is not None  # noqa: S101 - validated by the model
            fn, pg = self.key_fn(col.entity, loc)

            def coerce(v: Any, fn: Callable[[str], Any] = fn, ent: str = col.entity) -> Any:
                try:
                    return fn(str(v))
                except ValueError as exc:  # key functions never quote the key
                    raise CoercionError(f"the referenced {ent} key {exc}") from None

        elif col.type == "vector":
            assert col.dim is not None  # noqa: S101 - validated by the model
            coerce, pg = vector_coercer(col.dim), f"vector({col.dim})"
        else:
            coerce, pg = _with_options(col), PG_TYPES[col.type]
        return ColumnSpec(
            name,
            col.source,
            col.type,
            pg,
            col.nullable,
            secret or col.secret,
            line,
            getter(col.source),
            coerce,
            col.max_length,
        )


def _with_options(col: ColumnModel) -> Callable[[Any], Any]:
    """The coercer of a plain column type, with its options (the model checked they apply)."""
    if col.max_length is not None:
        return text_coercer(col.max_length)
    if col.epoch is not None or col.naive_zone is not None:
        return timestamptz_coercer(col.epoch or "ms", col.naive_zone)
    if col.encoding is not None:
        return bytea_coercer(col.encoding)
    return COERCERS[col.type]


def _parent_scoped_index(_item: Any, key: str, idx: int) -> str:
    return f"{key}\x1f{idx}"


def _child(
    c: _Compiler,
    entity: str,
    parent: EntityModel,
    pkeys: tuple[str, ...],
    pk_types: tuple[str, ...],
    i: int,
    ch: ChildModel,
    schema: str,
) -> ChildMapping:
    loc: Loc = ("entities", entity, "children", i)
    parents = (ch.parent_column,) if ch.parent_column else tuple(ch.parent_columns or ())
    if len(parents) != len(pkeys):
        raise c.fail(
            f"child {ch.table}: {len(parents)} parent column(s) for a {len(pkeys)}-column key", loc
        )
    names, types = list(parents), list(pk_types)
    own_key = own_getter = None
    key_cols: list[str] = list(parents)
    if ch.key is not None:
        if ch.key.column is None or ch.key.source is None:
            raise c.fail(f"child {ch.table}: key needs `column` and `from`", (*loc, "key"))
        own_key = key_function(
            ch.key.strategy, ch.key.namespace or f"{c.model.app}/{entity}.{ch.table}"
        )
        own_getter = getter(ch.key.source)
        if ch.key.source == "$index":
            # An array position is only unique within its parent: scope it by the parent's
            # legacy key, or every parent's first element would get the same id.
            own_getter = _parent_scoped_index
        names.append(ch.key.column)
        types.append(KEY_PG_TYPES[ch.key.strategy])
        key_cols = [ch.key.column]
    if ch.order_column is not None:
        names.append(ch.order_column)
        types.append("integer")
        if ch.key is None:
            key_cols.append(ch.order_column)
    secrets = set(parent.secret)
    # `secret: [items.code]` names a child field by its path through the array
    cols = tuple(
        c.column(
            n,
            col,
            n in secrets
            or col.source in secrets
            or f"{ch.source}.{col.source}" in secrets
            or is_secret_name(col.source),
            (*loc, "columns", n),
        )
        for n, col in ch.columns.items()
    )
    return ChildMapping(
        ch.table, ch.db_schema or schema, ch.source, parents, tuple(key_cols),
        (*names, *(x.name for x in cols)), (*types, *(x.pg_type for x in cols)),
        ch.order_column, own_key, own_getter, cols,
    )  # fmt: skip


def _entity(c: _Compiler, name: str, em: EntityModel) -> EntityMapping:
    loc: Loc = ("entities", name)
    schema = em.db_schema or c.model.db_schema
    k: KeyModel = em.key
    pkeys = k.names
    key_fn = key_function(k.strategy, k.namespace or f"{c.model.app}/{name}")
    pk_types = tuple("text" for _ in pkeys) if k.columns else (KEY_PG_TYPES[k.strategy],)
    for col in em.columns:
        if col in pkeys:
            raise c.fail(
                f"column {col} is the key: it is filled from the event key", (*loc, "columns", col)
            )
    secrets = set(em.secret)
    cols = tuple(
        c.column(
            n,
            col,
            n in secrets or col.source in secrets or is_secret_name(col.source),
            (*loc, "columns", n),
        )
        for n, col in em.columns.items()
    )
    children = tuple(
        _child(c, name, em, pkeys, pk_types, i, ch, schema) for i, ch in enumerate(em.children)
    )
    names = (*pkeys, *(x.name for x in cols))
    types = (*pk_types, *(x.pg_type for x in cols))
    if em.extra:
        names, types = (*names, em.extra), (*types, "jsonb")
    deps = {col.entity for col in em.columns.values() if col.type == "ref" and col.entity}
    deps |= {
        col.entity
        for ch in em.children
        for col in ch.columns.values()
        if col.type == "ref" and col.entity
    }
    secret_fields = frozenset(
        secrets | {x.source for x in cols if x.secret} | {x.name for x in cols if x.secret}
    )
    secret_fields |= {x.source for ch in children for x in ch.columns if x.secret}
    return EntityMapping(
        name, em.table, schema, pkeys, cols, names, types, children, secret_fields,
        frozenset(deps), em.version_field, em.extra, c.lines.get(loc, 0), key_fn,
        k.separator if k.columns else None,
        Unmapped([*(x.source for x in em.columns.values()), *(ch.source for ch in em.children)]),
    )  # fmt: skip


def compile_mapping(model: MappingFileModel, path: Path, lines: Lines) -> MappingSet:
    """Compile a validated mapping file."""
    c = _Compiler(model, path, lines)
    entities = {name: _entity(c, name, em) for name, em in model.entities.items()}
    return MappingSet(model.app, model.db_schema, entities, path, c.enums)
