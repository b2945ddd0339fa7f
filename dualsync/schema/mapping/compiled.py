"""Compiled mappings: `EntityMapping` (one entity) and `MappingSet` (one mapping file).

A failure raises `MappingError` naming entity, key, source path, column and the value
(redacted when the field is secret).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dualsync.redact import REDACTED, redact_value
from dualsync.schema.mapping.coerce import COERCERS, CoercionError, EnumDomain, to_jsonb
from dualsync.schema.mapping.errors import MappingError, UnknownEntityError
from dualsync.schema.mapping.model import MappingFileModel
from dualsync.schema.mapping.rows import (
    MISSING,
    ChildMapping,
    ColumnSpec,
    RowSet,
    getter,
    row_values,
)

__all__ = ["EntityMapping", "Lines", "MappingSet"]

#: YAML line of every key and sequence item of a mapping file, by path
#: (`("entities", "users", "columns", "email")`); see `dualsync.schema.mapping.loader`.
Lines = dict[tuple[str | int, ...], int]


@dataclass(frozen=True, slots=True, eq=False)
class EntityMapping:
    """One entity: its table, key, columns, children and secrets."""

    name: str
    table: str
    schema: str
    key_columns: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    column_names: tuple[str, ...]
    pg_types: tuple[str, ...]
    children: tuple[ChildMapping, ...]
    secret_fields: frozenset[str]
    depends_on: frozenset[str]
    version_field: str | None
    extra: str | None
    line: int
    _key_fn: Callable[[str], Any] = field(repr=False)
    _separator: str | None = field(repr=False)
    _mapped_sources: frozenset[str] = field(repr=False)

    def translate_key(self, legacy_key: str) -> tuple[Any, ...]:
        """The primary-key values of a legacy key."""
        if self._separator is not None:
            parts = legacy_key.split(self._separator)
            if len(parts) != len(self.key_columns) or not all(parts):
                raise MappingError(
                    f"{self.name} {legacy_key[:80]!r}: key: composite key needs "
                    f"{len(self.key_columns)} non-empty parts joined by {self._separator!r}",
                    entity=self.name, key=legacy_key, field="$key",
                )  # fmt: skip
            return tuple(parts)
        try:
            return (self._key_fn(legacy_key),)
        except ValueError as exc:
            raise MappingError(
                f"{self.name} {legacy_key[:80]!r}: key: {exc}",
                entity=self.name,
                key=legacy_key,
                field="$key",
            ) from None

    def to_rows(self, legacy_key: str, payload: dict[str, Any]) -> RowSet:
        """Map one document; raise `MappingError` naming the field."""
        key = self.translate_key(legacy_key)
        values = row_values(self.name, legacy_key, payload, 0, self.columns)
        if self.extra is not None:
            rest = {k: v for k, v in payload.items() if k not in self._mapped_sources}
            try:
                values.append(to_jsonb(rest) if rest else None)
            except CoercionError as exc:
                raise MappingError(
                    f"{self.name} {legacy_key!r}: unmapped fields -> {self.extra}: {exc}",
                    entity=self.name,
                    key=legacy_key,
                    field=self.extra,
                ) from None
        children = {c.table: c.rows(self.name, legacy_key, key, payload) for c in self.children}
        return RowSet(self.name, key, (*key, *values), children)

    def version_from(self, payload: dict[str, Any]) -> int | None:
        """The store's own version of a document (ints as is, datetimes in µs)."""
        if self.version_field is None:
            return None
        v = getter(self.version_field)(payload, "", 0)
        if v is MISSING or v is None:
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        try:
            ts = COERCERS["timestamptz"](v)
        except CoercionError:
            return None
        return int(ts.timestamp() * 1_000_000)

    def redact(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with secret fields replaced (for logs, dead letters, drift reports)."""
        out: dict[str, Any] = redact_value(payload, self.secret_fields)
        for path in self.secret_fields:
            parts = path.split(".")
            node: Any = out
            for p in parts[:-1]:
                node = node.get(p) if isinstance(node, dict) else None
            if isinstance(node, dict) and parts[-1] in node:
                node[parts[-1]] = REDACTED
        return out


@dataclass(eq=False)
class MappingSet:
    """Every entity of one mapping file."""

    app: str
    schema: str
    entities: dict[str, EntityMapping]
    path: Path
    enums: dict[str, EnumDomain]
    #: where each entry sits in the file, so checks against a live database can point at
    #: the offending line (`dualsync mappings check`); filled by `load_mapping`
    lines: Lines = field(default_factory=dict, repr=False)
    #: the validated file as written (per-column declared enum `values`, ...)
    model: MappingFileModel | None = field(default=None, repr=False)

    def entity(self, name: str) -> EntityMapping:
        """The mapping of an entity; `UnknownEntityError` when there is none."""
        em = self.entities.get(name)
        if em is None:
            raise UnknownEntityError(
                f"entity {name[:64]!r} has no mapping in {self.path.name} "
                f"(known: {', '.join(sorted(self.entities))})",
                entity=name,
            )
        return em

    def bind_enum_labels(self, labels: Mapping[str, frozenset[str]]) -> None:
        """Check enums without declared `values` against the live Postgres labels."""
        for name, dom in self.enums.items():
            live = labels.get(name)
            if live is not None:
                dom.labels = live
