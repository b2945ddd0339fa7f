"""The mapping file's shape (format v1, docs/mappings.md), validated by pydantic."""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from dualsync.schema.envelope import ENTITY_PATTERN
from dualsync.schema.mapping.coerce_time import zone
from dualsync.schema.mapping.source import SourceModel

__all__ = ["ChildModel", "ColumnModel", "EntityModel", "KeyModel", "MappingFileModel"]

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"
ColumnType = Literal[
    "text", "int", "bigint", "smallint", "numeric", "float", "bool", "timestamptz", "date",
    "time", "jsonb", "uuid", "inet", "enum", "ref", "vector", "objectid", "text[]", "bytea",
]  # fmt: skip
#: column option -> the one column type it applies to
_OPTION_TYPES: Final = {
    "max_length": "text", "epoch": "timestamptz", "naive_zone": "timestamptz", "encoding": "bytea",
}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ColumnModel(_Strict):
    """One target column and where its value comes from."""

    source: str = Field(alias="from", min_length=1)
    type: ColumnType
    nullable: bool = True
    secret: bool = False
    enum: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")
    values: list[str] | None = None
    entity: str | None = Field(default=None, pattern=ENTITY_PATTERN)
    dim: int | None = Field(default=None, ge=1, le=16000)
    #: `text`: the column's varchar(n)/char(n) length, in characters, enforced at decode
    max_length: int | None = Field(default=None, ge=1, le=10485760)
    #: `timestamptz`: the unit of epoch numbers (default ms)
    epoch: Literal["s", "ms", "us"] | None = None
    #: `timestamptz`: the IANA zone of wall-clock times without an offset (default UTC)
    naive_zone: str | None = None
    #: `bytea`: how a string holds the bytes (without it, only `$binary` values are bytes)
    encoding: Literal["base64", "hex"] | None = None

    @field_validator("max_length", "epoch", "naive_zone", "encoding")
    @classmethod
    def _option_of_type(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")  # absent when `type` itself is invalid: reported first
        want = _OPTION_TYPES[str(info.field_name)]
        if kind is not None and kind != want:
            raise ValueError(f"`{info.field_name}` applies only to `type: {want}` columns")
        if info.field_name == "naive_zone" and value is not None:
            zone(value)  # ValueError names the zone and what to write instead
        return value

    @model_validator(mode="after")
    def _type_options(self) -> ColumnModel:
        if self.type == "enum" and not self.enum:
            raise ValueError("an enum column needs `enum: <postgres type name>`")
        if self.type != "enum" and (self.enum is not None or self.values is not None):
            raise ValueError("`enum` and `values` apply only to `type: enum` columns")
        if self.type == "ref" and not self.entity:
            raise ValueError("a ref column needs `entity: <referenced entity>`")
        if self.type == "vector" and not self.dim:
            raise ValueError("a vector column needs `dim: <dimensions>`")
        return self


class KeyModel(_Strict):
    """How the legacy key becomes the primary key."""

    column: str | None = Field(default=None, pattern=_IDENT)
    columns: list[str] | None = None
    separator: str = ":"
    strategy: Literal["text", "uuid", "uuid5", "cuid", "int"] = "text"
    namespace: str | None = None
    source: str | None = Field(default=None, alias="from")

    @model_validator(mode="after")
    def _one_form(self) -> KeyModel:
        if (self.column is None) == (self.columns is None):
            raise ValueError("give either `column` or `columns` (composite key)")
        if self.columns is not None and self.strategy != "text":
            raise ValueError("composite keys are split into text parts: strategy must be text")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return (self.column,) if self.column else tuple(self.columns or ())


class ChildModel(_Strict):
    """An array in the document exploded into a child table."""

    table: str = Field(pattern=_IDENT)
    source: str = Field(alias="from")
    parent_column: str | None = Field(default=None, pattern=_IDENT)
    parent_columns: list[str] | None = None
    key: KeyModel | None = None
    order_column: str | None = Field(default=None, pattern=_IDENT)
    columns: dict[str, ColumnModel] = Field(default_factory=dict)
    db_schema: str | None = Field(default=None, alias="schema")

    @model_validator(mode="after")
    def _parent(self) -> ChildModel:
        if (self.parent_column is None) == (self.parent_columns is None):
            raise ValueError("give `parent_column` (or `parent_columns` for a composite parent)")
        if self.key is None and self.order_column is None:
            raise ValueError("a child table needs its own `key` or an `order_column` for its PK")
        return self


class EntityModel(_Strict):
    """One logical entity."""

    table: str = Field(pattern=_IDENT)
    key: KeyModel
    columns: dict[str, ColumnModel] = Field(default_factory=dict)
    children: list[ChildModel] = Field(default_factory=list)
    secret: list[str] = Field(default_factory=list)
    extra: str | None = Field(default=None, pattern=_IDENT)
    version_field: str | None = None
    db_schema: str | None = Field(default=None, alias="schema")
    #: where the records live in the legacy store (`schema/mapping/source.py`)
    source: SourceModel | None = None


class MappingFileModel(_Strict):
    """A whole mapping file."""

    version: Literal[1]
    app: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    db_schema: str = Field(default="public", alias="schema", pattern=_IDENT)
    entities: dict[str, EntityModel]
