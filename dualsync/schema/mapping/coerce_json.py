"""jsonb coercion: decoded Extended JSON values -> JSON that PostgreSQL accepts, serialised once."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any, Final

import orjson
from bson import Decimal128, ObjectId
from psycopg.types.json import Jsonb

from dualsync.schema.mapping.coerce_base import CoercionError, text_ok, utc

__all__ = ["json_safe", "to_jsonb"]


def json_safe(v: Any) -> Any:  # noqa: PLR0911, C901 - one branch per rich type
    """Convert decoded Extended JSON values to plain JSON for a jsonb column."""
    if isinstance(v, str):
        return text_ok(v)
    if v is None or isinstance(v, bool | int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise CoercionError("NaN and infinity cannot be stored in jsonb")
        return v
    if isinstance(v, dict):
        return {text_ok(str(k)): json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_safe(x) for x in v]
    if isinstance(v, dt.datetime):
        return utc(v).isoformat().replace("+00:00", "Z")
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, Decimal | Decimal128):
        return str(v)
    if isinstance(v, ObjectId | uuid.UUID):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    raise CoercionError(f"cannot store a {type(v).__name__} in jsonb")


def _json_default(v: Any) -> Any:
    # Only the rich types json_safe converts; anything else stays an error (TypeError).
    if isinstance(v, dt.datetime | dt.date | dt.time | Decimal | Decimal128 | ObjectId | bytes):
        return json_safe(v)
    raise TypeError


_JSON_OPTS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _as_is(data: Any) -> Any:
    return data


def to_jsonb(v: Any) -> Jsonb:
    """A jsonb value, serialised once, here.

    Fast path: orjson writes the value with `json_safe`'s rules for rich types. Its output
    is kept only when it cannot hide a difference from the exact walk: no `null` (orjson
    writes NaN and infinity as null; json_safe refuses them) and no escaped NUL (refused
    too). Lone surrogates, non-string keys and integers beyond 64 bits make orjson raise.
    In every such case the exact `json_safe` walk decides, and raises `CoercionError`
    where it must. The bytes are handed to psycopg as they are: it does not serialise the
    value a second time with the stdlib `json` module (bench/apply profile).
    """
    try:
        out: bytes | None = orjson.dumps(v, default=_json_default, option=_JSON_OPTS)
    except TypeError:
        out = None
    if out is None or b"null" in out or b"\\u0000" in out:
        return Jsonb(json_safe(v))
    return Jsonb(out, dumps=_as_is)
