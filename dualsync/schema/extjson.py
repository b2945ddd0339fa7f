"""Payload (de)serialisation: orjson on the fast path, MongoDB Extended JSON v2 for rich types.

Encoding turns Python values into Extended JSON v2 so their types survive the stream:
`ObjectId`→`$oid`, `datetime`→`$date` (ISO 8601, microseconds kept; naive datetimes are
UTC, as pymongo returns them), `Decimal`→`$numberDecimal`, `bytes`→`$binary`,
`UUID`→`$uuid`, non-finite floats→`$numberDouble`, ints beyond 64 bits stay exact.
Decoding parses with msgspec (`jsonexact`: integers stay exact) and converts `$`-dicts
bottom-up with pymongo's own `bson.json_util.object_hook`, then to plain Python
(`Decimal`, `int`, `bytes`).

Limit, by design of Extended JSON: a document whose own field names start with `$`
(which MongoDB itself forbids in stored documents) is read as a type wrapper.
"""

from __future__ import annotations

import binascii
import datetime as dt
import json
import math
import re
import uuid
from decimal import Decimal
from typing import Any, Final

import orjson
import pybase64
from bson import Decimal128, Int64, ObjectId
from bson.binary import Binary, UuidRepresentation
from bson.errors import InvalidBSON, InvalidId
from bson.json_util import JSONOptions, object_hook

from dualsync.schema.jsonexact import JSONTextError, loads_exact

__all__ = ["dumps_payload", "loads_payload", "to_extjson"]

_OPTIONS: Final = JSONOptions(
    tz_aware=True, tzinfo=dt.UTC, uuid_representation=UuidRepresentation.STANDARD
)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _date(value: dt.datetime) -> dict[str, str]:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    text = value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return {"$date": text.replace("+00:00", "Z")}


_PASS: Final = frozenset({str, int, bool, type(None)})


def to_extjson(value: Any) -> Any:
    """Return `value` with every non-JSON type replaced by its Extended JSON v2 wrapper."""
    t = type(value)
    if t in _PASS:
        return value
    if t is float:
        if math.isfinite(value):
            return value
        return {
            "$numberDouble": "NaN"
            if math.isnan(value)
            else ("Infinity" if value > 0 else "-Infinity")
        }
    # Inline the pass-through check: most leaves are plain JSON and need no call.
    if t is dict:
        return {
            k if type(k) is str else str(k): v if type(v) in _PASS else to_extjson(v)
            for k, v in value.items()
        }
    if t is list or t is tuple:
        return [v if type(v) in _PASS else to_extjson(v) for v in value]
    return _rich(value)


def _rich(value: Any) -> Any:  # noqa: PLR0911, C901 - one branch per Extended JSON type
    if isinstance(value, dt.datetime):
        return _date(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, ObjectId):
        return {"$oid": str(value)}
    if isinstance(value, Decimal | Decimal128):
        return {"$numberDecimal": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, Binary):
        return {
            "$binary": {
                "base64": pybase64.b64encode(value).decode(),
                "subType": f"{value.subtype:02x}",
            }
        }
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$binary": {"base64": pybase64.b64encode(bytes(value)).decode(), "subType": "00"}}
    if isinstance(value, int):  # bool handled above; Int64 and other int subclasses
        return int(value)
    if isinstance(value, float):
        return to_extjson(float(value))
    if isinstance(value, dict):
        return {str(k): to_extjson(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_extjson(v) for v in value]
    raise TypeError(f"cannot encode a value of type {type(value).__name__} into an event payload")


def _default(value: Any) -> Any:
    return _rich(value)


# orjson writes UUIDs as plain strings and NaN/inf as null: outputs that may contain
# either go through the exact (slower) walk instead.
_UUID_STR: Final = re.compile(rb'"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"')
_FAST_OPTS: Final = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps_payload(payload: Any) -> bytes:
    """Serialise a payload to JSON bytes with Extended JSON wrappers for rich types.

    Fast path: orjson with a `default` for rich types. When its output could hide a
    lossy conversion (a `null`, which may have been NaN; a UUID-shaped string, which may
    have been a `UUID`) or orjson refuses the input (ints beyond 64 bits, non-string
    keys), the document is converted by the exact `to_extjson` walk instead.
    """
    try:
        out = orjson.dumps(payload, default=_default, option=_FAST_OPTS)
    except TypeError:
        pass
    else:
        if b"null" not in out and not _UUID_STR.search(out):
            return out
    ext = to_extjson(payload)
    try:
        return orjson.dumps(ext)
    except TypeError:
        # orjson refuses integers beyond 64 bits; the stdlib writes them exactly.
        return json.dumps(ext, ensure_ascii=False, separators=(",", ":")).encode()


def _from_ext(value: Any) -> Any:
    if type(value) is dict:
        out = {k: _from_ext(v) for k, v in value.items()}
        for k in out:
            if k[:1] == "$":
                return _wrapped(out)
        return out
    if type(value) is list:
        return [_from_ext(v) for v in value]
    return value


#: `$binary` subtypes pymongo turns into something other than `Binary` (UUIDs)
_UUID_SUBTYPES: Final = frozenset({3, 4})
#: a canonical `$binary` holds exactly `base64` and `subType`, a subType of 1-2 hex digits
_BINARY_PARTS: Final = 2
_SUBTYPE_DIGITS: Final = 2


def _b64(text: str) -> bytes:
    """base64 as the stdlib decodes it (characters outside the alphabet are skipped, bad
    padding raises), by pybase64's SIMD decoder (chosen for the CPU at run time): an
    embedding's 8 KB of base64 is ~30 µs in the stdlib, ~4 µs here."""
    try:
        return pybase64.b64decode(text, validate=True)
    except binascii.Error:
        return pybase64.b64decode(text)


def _binary(binary: Any) -> Any:
    """A canonical `$binary`, as pymongo's parser returns it (same checks), or None for
    what pymongo must parse (a UUID subtype, a malformed wrapper: its error)."""
    if type(binary) is not dict or len(binary) != _BINARY_PARTS:
        return None
    b64, sub = binary.get("base64"), binary.get("subType")
    if type(b64) is not str or type(sub) is not str or not 0 < len(sub) <= _SUBTYPE_DIGITS:
        return None
    subtype = int(sub, 16)  # ValueError: loads_payload's "invalid Extended JSON value"
    if subtype in _UUID_SUBTYPES:
        return None
    data = _b64(b64)
    return data if subtype == 0 else Binary(data, subtype)


def _wrapped(value: dict[str, Any]) -> Any:
    if len(value) == 1 and "$binary" in value:
        out = _binary(value["$binary"])
        if out is not None:
            return out
    date = value.get("$date")
    if type(date) is str and len(value) == 1:
        # pymongo parses ISO dates through float seconds and can lose a microsecond;
        # fromisoformat is exact.
        parsed = dt.datetime.fromisoformat(date)
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    return _plain(object_hook(value, _OPTIONS))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, Int64):
        return int(value)
    if isinstance(value, Binary) and value.subtype == 0:
        return bytes(value)
    return value


def loads_payload(raw: bytes | str) -> Any:
    """Parse JSON payload bytes into Python values, decoding Extended JSON v2 wrappers.

    Integers stay exact however long they are (`jsonexact`). Raises `ValueError` on
    invalid JSON or an invalid Extended JSON value.
    """
    try:
        data = raw.encode() if isinstance(raw, str) else raw
        parsed = loads_exact(data)
        # No '"$' anywhere means no Extended JSON wrapper: skip the walk.
        # (memchr for the '$' first: a two-byte search costs as much as the parse.)
        return _from_ext(parsed) if b"$" in data and b'"$' in data else parsed
    except JSONTextError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    except UnicodeError:  # a str holding a lone surrogate
        raise ValueError("not valid JSON (not valid UTF-8)") from None
    except (ValueError, InvalidBSON, InvalidId, TypeError, KeyError, ArithmeticError) as exc:
        # ArithmeticError: OverflowError, and decimal.InvalidOperation (a bad $numberDecimal)
        raise ValueError(f"invalid Extended JSON value: {exc}") from None
