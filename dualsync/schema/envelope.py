"""The change-event envelope: the contract every producer (Python, Node, PHP) follows.

Two views of one contract:
- `WireEnvelope`: the Redis stream entry as producers write it (every field a string);
  its JSON Schema is exported to `envelope.schema.json` for the Node and PHP publishers.
- `ChangeEvent`: the decoded, validated event the worker applies (typed values).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ENTITY_PATTERN",
    "ID_PATTERN",
    "KEY_MAX",
    "SCHEMA_VERSION",
    "ChangeEvent",
    "Op",
    "WireEnvelope",
]

SCHEMA_VERSION: Final = 1
ENTITY_PATTERN: Final = r"^[a-z][a-z0-9_]{0,62}$"
KEY_MAX: Final = 512
ID_PATTERN: Final = r"^[A-Za-z0-9_.:-]{1,128}$"
_NO_NUL: Final = r"^[^\x00]+$"
_RFC3339: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"


class Op(StrEnum):
    """What happened to the legacy record."""

    UPSERT = "upsert"
    DELETE = "delete"


class WireEnvelope(BaseModel):
    """A stream entry as written by a producer: every field is a string (Redis stream fields)."""

    model_config = ConfigDict(
        extra="forbid",
        title="dualsync change event (Redis stream entry fields)",
        json_schema_extra={
            "description": (
                "Fields of one XADD entry on <prefix>:events:{<shard>}, shard = "
                "crc32(entity + '\\x1f' + key) % shards. All values are strings. "
                "payload is the full after-image as JSON (MongoDB Extended JSON v2 allowed); "
                "it is absent for delete and for reference events (ref = 'true')."
            )
        },
    )

    event_id: Annotated[str, Field(pattern=ID_PATTERN, description="Unique id, UUIDv7 preferred.")]
    source: Annotated[str, Field(pattern=ID_PATTERN, description="Producing application.")]
    entity: Annotated[str, Field(pattern=ENTITY_PATTERN, description="Logical entity name.")]
    key: Annotated[
        str, Field(min_length=1, max_length=KEY_MAX, pattern=_NO_NUL, description="Legacy key.")
    ]
    op: Op
    version: Annotated[
        str,
        Field(
            pattern=r"^(0|[1-9][0-9]{0,18})$",
            description="Integer, strictly increasing per (entity, key); < 2^63.",
        ),
    ]
    occurred_at: Annotated[
        str, Field(pattern=_RFC3339, description="RFC 3339 time of the legacy write.")
    ]
    payload: Annotated[str | None, Field(description="JSON after-image.")] = None
    ref: Literal["true", "false"] | None = Field(
        default=None, description="'true' marks a reference event: re-read from the legacy store."
    )
    schema_version: Literal["1"] = "1"
    trace_id: Annotated[str | None, Field(max_length=128, pattern=_NO_NUL)] = None
    sig: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$", description="Hex HMAC-SHA256.")] = (
        None
    )


class ChangeEvent(BaseModel):
    """A decoded, validated change event (see `dualsync.schema.codec.decode_fields`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: Annotated[str, Field(pattern=ID_PATTERN)]
    source: Annotated[str, Field(pattern=ID_PATTERN)]
    entity: Annotated[str, Field(pattern=ENTITY_PATTERN)]
    key: Annotated[str, Field(min_length=1, max_length=KEY_MAX, pattern=_NO_NUL)]
    op: Op
    version: Annotated[int, Field(ge=0, lt=2**63, strict=True)]
    occurred_at: dt.datetime
    payload: dict[str, Any] | None = None
    ref: bool = False
    schema_version: Literal[1] = SCHEMA_VERSION
    trace_id: str | None = None
    sig: str | None = None

    @model_validator(mode="after")
    def _payload_matches_op(self) -> Self:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry a UTC offset (RFC 3339)")
        if self.op is Op.DELETE and self.payload is not None:
            raise ValueError("payload must be absent for op=delete")
        if self.op is Op.UPSERT and self.payload is None and not self.ref:
            raise ValueError("payload is required for op=upsert (or set ref=true)")
        if self.ref and self.payload is not None:
            raise ValueError("a reference event (ref=true) carries no payload")
        return self
