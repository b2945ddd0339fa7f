"""Compiled mappings: `EntityMapping` (one entity) and `MappingSet` (one mapping file).

A failure raises `MappingError` naming entity, key, source path, column and the value
(left out when the field is secret).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from dualsync.redact import redact_document
from dualsync.schema.mapping.coerce import COERCERS, CoercionError, EnumDomain, to_jsonb
from dualsync.schema.mapping.errors import MappingError, UnknownEntityError
from dualsync.schema.mapping.extra import Unmapped
from dualsync.schema.mapping.lines import Lines
from dualsync.schema.mapping.model import MappingFileModel
from dualsync.schema.mapping.rows import (
    MISSING,
    ChildMapping,
    ColumnSpec,
    RowSet,
    getter,
    row_values,
)

__all__ = ["EntityMapping", "Lines", "MappingSet"]  # Lines: re-exported from lines.py

#: keys remembered by `EntityMapping.translate_key` (more than a batch of 5,000 events)
_MEMO_MAX: Final = 8192


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
    #: the document without what columns and children read (`extra`; see extra.py)
    _unmapped: Unmapped = field(repr=False)
    #: recent `translate_key` results of single-column keys: the worker asks for a key's
    #: canonical form when it decodes an event and for its values again when it maps the
    #: document, and a uuid5 or cuid key costs a hash each time (key functions are pure,
    #: so a result can be reused; emptied when full)
    _memo: dict[str, tuple[Any, ...]] = field(default_factory=dict, repr=False)

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
        memo = self._memo
        hit = memo.get(legacy_key)
        if hit is not None:
            return hit
        try:
            values = (self._key_fn(legacy_key),)
        except ValueError as exc:
            raise MappingError(
                f"{self.name} {legacy_key[:80]!r}: the key {exc}",
                entity=self.name,
                key=legacy_key,
                field="$key",
            ) from None
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        memo[legacy_key] = values
        return values

    def to_rows(self, legacy_key: str, payload: dict[str, Any]) -> RowSet:
        """Map one document; raise `MappingError` naming the field."""
        key = self.translate_key(legacy_key)
        values = row_values(self.name, legacy_key, payload, 0, self.columns)
        if self.extra is not None:
            rest = self._unmapped(payload)
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
        """The payload with secret fields replaced (for logs, dead letters, drift reports).

        Secrets are the mapping's `secret` names (at any depth) and dotted paths (from the
        root, through arrays of objects: `contacts.pin` is every contact's pin), secret
        columns of child tables under their array, and whatever `dualsync.redact` calls
        a credential by name."""
        out: dict[str, Any] = redact_document(
            payload, names=self.secret_fields, paths=self.secret_paths()
        )
        return out

    def secret_paths(self) -> tuple[str, ...]:
        """Dotted paths of secrets from the document's root: the mapping's own, and the
        secret columns of child tables (`items.token` for column `token` of `items`)."""
        paths = {p for p in self.secret_fields if "." in p}
        paths |= {
            f"{ch.source}.{c.source}"
            for ch in self.children
            for c in ch.columns
            if c.secret and not c.source.startswith("$")
        }
        return tuple(sorted(paths))

    def secret_values(self, payload: Any) -> list[str]:
        """The secret values of a document, as text: what `redact` replaces, so that error
        text quoting one of them can be scrubbed (`dualsync.redact.scrub`)."""
        found: list[str] = []
        redact_document(payload, names=self.secret_fields, paths=self.secret_paths(), found=found)
        return found

    def canonical_key(self, legacy_key: str) -> str:
        """The one spelling of a legacy key that the version gate (`row_state`) is keyed on.

        Strategies that parse the key (`uuid`, `int`) accept many spellings of one target
        key (upper or lower case, braces, `urn:uuid:`; leading zeros, spaces): the
        canonical key is the target key's text form (`str(UUID(k))`, `str(int(k))`), so
        that a delete and a late upsert spelled differently meet in row_state. Strategies
        that keep the key (`text`, composite keys, validated part by part) or hash it
        (`uuid5`, `cuid`, where each spelling is its own target row) keep it as is. The
        rule, without naming strategies: the target key's text form is canonical when it
        translates back to the same target key. Raises `MappingError` when the key does
        not fit the strategy."""
        values = self.translate_key(legacy_key)
        if self._separator is not None:
            return legacy_key
        [value] = values
        text = str(value)
        if text == legacy_key:
            return legacy_key
        try:
            same = bool(self._key_fn(text) == value)
        except ValueError:
            same = False
        return text if same else legacy_key


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
