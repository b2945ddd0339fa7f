"""Coercions: legacy values -> values psycopg writes to a Postgres column type, exactly.

Each coercer takes a present, non-null value and returns the column value or raises
`CoercionError` with what is wrong (the caller adds entity, key, field and value).
Rules: no float detours for numerics, every timestamp is UTC, text and jsonb refuse NUL
characters and lone surrogates (Postgres cannot store them), nothing is silently
defaulted.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeAlias

from bson import Decimal128, ObjectId
from bson.binary import Binary

from dualsync.schema.mapping.coerce_base import CoercionError, text_ok
from dualsync.schema.mapping.coerce_binary import bytea_coercer, to_bytea
from dualsync.schema.mapping.coerce_json import json_safe, to_jsonb
from dualsync.schema.mapping.coerce_time import to_date, to_time, to_timestamptz
from dualsync.schema.mapping.coerce_vector import (
    BSON_VECTOR_SUBTYPE,
    PackedVector,
    finite_floats,
    packed_bson_vector,
)

__all__ = [
    "COERCERS",
    "PG_TYPES",
    "CoercionError",
    "EnumDomain",
    "bytea_coercer",
    "json_safe",
    "text_coercer",
    "to_jsonb",
    "vector_coercer",
]

Coercer = Callable[[Any], Any]
_INT_TEXT: Final = re.compile(r"\s*[+-]?[0-9]+\s*\Z")  # ASCII digits only: not "²", not "+-5"
_INT_RANGES: Final = {"smallint": 2**15, "int": 2**31, "bigint": 2**63}
_WIDER: Final = {"smallint": "int or bigint", "int": "bigint", "bigint": "numeric"}
_LISTED: Final = 8  # enum labels named in an error


class EnumDomain:
    """The allowed labels of an enum column: declared in the mapping, or bound from Postgres."""

    def __init__(self, type_name: str, values: frozenset[str] | None) -> None:
        self.type_name = type_name
        self.labels = values

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise CoercionError(f"enum {self.type_name} needs a string")
        if self.labels is not None and value not in self.labels:
            # The value is not quoted (the column may be secret); the labels are the schema's.
            known = sorted(self.labels)
            listed = ", ".join(known[:_LISTED]) + (", ..." if len(known) > _LISTED else "")
            raise CoercionError(
                f"not a value of enum {self.type_name} (values: {listed}): fix the source, "
                "or add the label to the enum type and to the mapping's `values`"
            )
        return value


def to_text(v: Any) -> str:
    if type(v) is str and v.isascii() and "\x00" not in v:  # the common case, inline
        return v
    if isinstance(v, str):
        return text_ok(v)
    if isinstance(v, ObjectId | uuid.UUID | Decimal) or (
        isinstance(v, int) and not isinstance(v, bool)
    ):
        return str(v)
    raise CoercionError(f"expected text, got {type(v).__name__}")


def text_coercer(max_length: int | None = None) -> Coercer:
    """A `text` column's coercer; with `max_length`, what varchar(n) and char(n) accept.

    Like PostgreSQL, a longer value is refused unless the excess is all spaces, which
    are dropped (so the value written is the value stored). The value is not quoted.
    """
    if max_length is None:
        return to_text

    def coerce(v: Any) -> str:
        # to_text's common case inline (one call fewer per value)
        text = v if type(v) is str and v.isascii() and "\x00" not in v else to_text(v)
        if len(text) > max_length:
            if text[max_length:].strip(" "):
                raise CoercionError(
                    f"{len(text)} characters, longer than max_length {max_length}: shorten "
                    "the value at the source, or widen the column and its max_length together"
                )
            return text[:max_length]
        return text

    return coerce


def to_objectid(v: Any) -> str:
    if isinstance(v, ObjectId):
        return str(v)
    if isinstance(v, str) and ObjectId.is_valid(v) and len(v) == 24:  # noqa: PLR2004 - hex length
        return v.lower()
    raise CoercionError("expected an ObjectId (or its 24-character hex)")


def _int_of(v: Any) -> int:
    if type(v) is int:
        return v
    if isinstance(v, bool):
        raise CoercionError("expected an integer, got a boolean")
    if isinstance(v, int):
        return v
    if isinstance(v, float | Decimal) and math.isfinite(v) and v == int(v):
        return int(v)
    if isinstance(v, str) and _INT_TEXT.match(v):
        return int(v)
    raise CoercionError(f"expected an integer, got {type(v).__name__}")


def _int_coercer(kind: str) -> Coercer:
    limit = _INT_RANGES[kind]

    def coerce(v: Any) -> int:
        n = _int_of(v)
        if not -limit <= n < limit:  # the number is not quoted: the column may be secret
            raise CoercionError(
                f"out of range for {kind} (a {limit.bit_length()}-bit integer): "
                f"map it to a wider type ({_WIDER[kind]}) with the column"
            )
        return n

    return coerce


def to_numeric(v: Any) -> Decimal:
    if isinstance(v, bool):
        raise CoercionError("expected a number, got a boolean")
    if isinstance(v, Decimal128):
        v = v.to_decimal()
    if isinstance(v, float):
        v = Decimal(repr(v))  # the shortest repr, not the binary expansion
    elif isinstance(v, int):
        v = Decimal(v)
    elif isinstance(v, str):
        try:
            v = Decimal(v.strip())
        except InvalidOperation:
            raise CoercionError("not a number") from None
    if not isinstance(v, Decimal):
        raise CoercionError(f"expected a number, got {type(v).__name__}")
    if not v.is_finite():
        raise CoercionError("NaN and infinity are not numeric values")
    return v


def to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise CoercionError("expected a number, got a boolean")
    if type(v) is float:
        return v  # NaN and infinity included: double precision stores them as they are
    if not isinstance(v, int | float | Decimal | Decimal128 | str):
        raise CoercionError(f"expected a number, got {type(v).__name__}")
    try:
        out = float(str(v)) if isinstance(v, Decimal128) else float(v)
    except OverflowError:
        raise CoercionError("out of range for double precision") from None
    except ValueError:
        raise CoercionError("not a number") from None
    if math.isinf(out) and not (isinstance(v, str | Decimal) and "inf" in str(v).lower()):
        raise CoercionError("out of range for double precision")  # 1e400 must not become inf
    return out


_TRUE: Final = frozenset({"true", "1", "yes", "t"})
_FALSE: Final = frozenset({"false", "0", "no", "f"})


def to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    raise CoercionError("expected a boolean (true/false, 1/0, 'true'/'false')")


def to_uuid(v: Any) -> uuid.UUID:
    if isinstance(v, uuid.UUID):
        return v
    if isinstance(v, str):
        try:
            return uuid.UUID(v)
        except ValueError:
            raise CoercionError("not a UUID") from None
    raise CoercionError(f"expected a UUID, got {type(v).__name__}")


IPValue: TypeAlias = (
    ipaddress.IPv4Address
    | ipaddress.IPv6Address
    | ipaddress.IPv4Interface
    | ipaddress.IPv6Interface
)


def to_inet(v: Any) -> IPValue:
    """An address (`10.0.0.1`, `::1`) or an address with a prefix (`10.0.0.0/8`)."""
    if isinstance(v, IPValue):
        return v
    if not isinstance(v, str):
        raise CoercionError(f"expected an IP address, got {type(v).__name__}")
    text = v.strip()
    try:
        return ipaddress.ip_interface(text) if "/" in text else ipaddress.ip_address(text)
    except ValueError:
        raise CoercionError("not an IPv4 or IPv6 address") from None


def to_text_array(v: Any) -> list[str]:
    if not isinstance(v, list | tuple):
        raise CoercionError("expected an array of strings")
    return [to_text(x) for x in v]


def vector_coercer(dim: int) -> Coercer:
    def coerce(v: Any) -> list[float] | PackedVector:
        if type(v) is Binary and v.subtype == BSON_VECTOR_SUBTYPE:
            packed = packed_bson_vector(v)
            if packed.dims != dim:
                raise CoercionError(f"vector has {packed.dims} dimensions, the column has {dim}")
            return packed
        if not isinstance(v, list | tuple):
            raise CoercionError(f"expected an array of {dim} numbers")
        if len(v) != dim:
            raise CoercionError(f"vector has {len(v)} dimensions, the column has {dim}")
        if finite_floats(v):  # the values as they are
            return v if type(v) is list else list(v)
        out = [to_float(x) for x in v]
        if not all(math.isfinite(x) for x in out):
            raise CoercionError("vectors cannot hold NaN or infinity")
        return out

    return coerce


COERCERS: Final[dict[str, Coercer]] = {
    "text": to_text,
    "objectid": to_objectid,
    "smallint": _int_coercer("smallint"),
    "int": _int_coercer("int"),
    "bigint": _int_coercer("bigint"),
    "numeric": to_numeric,
    "float": to_float,
    "bool": to_bool,
    "timestamptz": to_timestamptz,
    "date": to_date,
    "time": to_time,
    "uuid": to_uuid,
    "inet": to_inet,
    "jsonb": to_jsonb,
    "text[]": to_text_array,
    "bytea": to_bytea,
}
PG_TYPES: Final[dict[str, str]] = {
    "text": "text",
    "objectid": "text",
    "smallint": "smallint",
    "int": "integer",
    "bigint": "bigint",
    "numeric": "numeric",
    "float": "double precision",
    "bool": "boolean",
    "timestamptz": "timestamptz",
    "date": "date",
    "time": "time",
    "uuid": "uuid",
    "inet": "inet",
    "jsonb": "jsonb",
    "text[]": "text[]",
    "bytea": "bytea",
}
