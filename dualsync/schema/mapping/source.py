"""Where an entity's records live in the legacy store: the mapping's `source:` section.

Exactly one of four shapes (docs/mappings.md, "Sources"):

- `mongo: {collection: users}`: one collection per entity; the key is the string the app
  publishes for `_id` (ObjectId hex, the string itself, the integer in decimal);
- `json_dir: {dir: data/memory, glob: "*.json"}`: one file per record, key = what the
  glob's wildcards match, joined with `/` (the file stem for `*.json`);
- `json_file: {file: data/personalities.json, depth: 1|2, key_separator: ":"}`: one object
  rewritten whole by the app; at depth 2, `{user: {personality: {...}}}` has key
  `user:personality`;
- `json_lines: {glob: "api/logs/*.log"}`: append-only JSON lines, key `<file>:<line>`.

Relative paths are resolved against the legacy root given at run time (`--legacy-root`,
default: the mapping file's folder).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "JsonDirSource",
    "JsonFileSource",
    "JsonLinesSource",
    "MongoSource",
    "SourceModel",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MongoSource(_Strict):
    """One MongoDB collection."""

    collection: str = Field(min_length=1, max_length=255)
    #: the database, when not the one named in `MONGO_URL`
    database: str | None = None
    #: how a key string maps back to `_id`; `auto` looks at the collection's first `_id`
    id_type: Literal["auto", "objectid", "string", "int"] = "auto"


class JsonDirSource(_Strict):
    """A folder of one JSON file per record."""

    dir: str = Field(min_length=1)
    glob: str = "*.json"


class JsonFileSource(_Strict):
    """One JSON object holding every record, rewritten whole by the app."""

    file: str = Field(min_length=1)
    depth: Literal[1, 2] = 1
    key_separator: str = Field(default=":", min_length=1, max_length=8)
    #: take the key from this field of each record instead of its object key (tzurot's
    #: conversations.json is keyed "userId-channelId" but its rows by the record's `id`)
    key_field: str | None = Field(default=None, min_length=1)


class JsonLinesSource(_Strict):
    """Append-only files of one JSON object per line."""

    glob: str = Field(min_length=1)


class SourceModel(_Strict):
    """The `source:` of one entity: exactly one shape."""

    mongo: MongoSource | None = None
    json_dir: JsonDirSource | None = None
    json_file: JsonFileSource | None = None
    json_lines: JsonLinesSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceModel:
        given = [n for n in ("mongo", "json_dir", "json_file", "json_lines") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of mongo, json_dir, json_file, json_lines"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        """Which shape this is."""
        for n in ("mongo", "json_dir", "json_file", "json_lines"):
            if getattr(self, n) is not None:
                return n
        raise AssertionError("validated: one shape is set")  # pragma: no cover
