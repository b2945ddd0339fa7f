"""The canonical form: one shape for a legacy document and a Postgres row, through the mapping.

Both sides go through the entity's mapping first (the legacy document with `to_rows`, the
row as selected from its table and child tables), so what is compared is what dualsync
would write. Then every value takes one form:

- timestamps: UTC, ISO 8601 with microseconds (a naive timestamp is read as UTC);
- numerics: normalised decimal text (`1.50` -> `1.5`, `-0` -> `0`, no exponent);
- strings: Unicode NFC; uuids lower-case; inet addresses as `ipaddress` prints them;
- jsonb: decoded with exact decimals, keys sorted, strings NFC, numbers as above; a missing
  key, a null and an empty object or array stay three different things;
- vectors: float32, what pgvector stores, compared within `VECTOR_TOLERANCE`;
- bytea: hex; arrays: element by element;
- secret columns: a keyed fingerprint (HMAC-SHA256) of the canonical value, never the value.

Child rows are compared as sets keyed by their primary key, so their order does not matter
and a changed child row names its column (`messages.content`). `CANON_VERSION` is stored with
every verify run: a change of these rules is a new version, and runs of different versions
are not compared.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import math
import struct
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import orjson
from bson.binary import Binary

from dualsync.schema.mapping.coerce_base import CoercionError
from dualsync.schema.mapping.coerce_vector import BSON_VECTOR_SUBTYPE, bson_vector

__all__ = [
    "CANON_VERSION",
    "VECTOR_TOLERANCE",
    "CanonRecord",
    "Canonicalizer",
    "canon_function",
    "canon_value",
    "diff",
]

CANON_VERSION: Final = 1
#: absolute difference allowed per vector component, after both sides are float32
VECTOR_TOLERANCE: Final = 1e-6
_NUM: Final = "\x00n:"  # tags a normalised number inside jsonb, so "1.5" (text) != 1.5


@dataclass(frozen=True, slots=True)
class CanonRecord:
    """One record in canonical form: its columns, and its child rows by table and key."""

    columns: dict[str, Any]
    children: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def fingerprint(self, key: bytes) -> str:
        """A keyed fingerprint of the whole record (hex), safe to store and print."""
        data = orjson.dumps({"c": self.columns, "k": self.children}, option=orjson.OPT_SORT_KEYS)
        return hmac.new(key, data, hashlib.sha256).hexdigest()[:32]


def _decimal(d: Decimal) -> str:
    if not d.is_finite():
        return str(d)
    if d.is_zero():
        return "0"
    return format(d.normalize(), "f")


def _json_value(v: Any) -> Any:  # noqa: PLR0911 - one branch per JSON type
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return _NUM + str(v)
    if isinstance(v, float | Decimal):
        d = Decimal(str(v)) if isinstance(v, float) else v
        return _NUM + _decimal(d)
    if isinstance(v, str):
        return unicodedata.normalize("NFC", v)
    if isinstance(v, dict):
        return {unicodedata.normalize("NFC", str(k)): _json_value(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    return unicodedata.normalize("NFC", str(v))


def _jsonb(v: Any) -> Any:
    obj = getattr(v, "obj", v)  # psycopg's Jsonb wrapper (the mapping's output)
    if isinstance(obj, bytes | bytearray | memoryview):
        obj = bytes(obj).decode()
    if isinstance(obj, str):
        obj = json.loads(obj, parse_float=Decimal)
    return _json_value(obj)


def _timestamp(v: Any) -> str:
    if isinstance(v, dt.datetime):
        aware = v if v.tzinfo is not None else v.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return str(v)


def _f32(x: float) -> float:
    result: float = struct.unpack("f", struct.pack("f", float(x)))[0]
    return result


def _vector(v: Any) -> list[float]:
    if isinstance(v, str):  # '[1,2,3]', as selected with ::text
        v = json.loads(v)
    if isinstance(v, Binary) and v.subtype == BSON_VECTOR_SUBTYPE:  # float32 already
        with contextlib.suppress(CoercionError):  # a malformed one: compared as it is
            return bson_vector(v)
    if hasattr(v, "to_list"):
        v = v.to_list()
    return [_f32(x) for x in v]


def _inet(v: Any) -> str:
    try:
        iface = ipaddress.ip_interface(str(v))
    except ValueError:
        return str(v)
    full = iface.network.prefixlen == iface.max_prefixlen
    return str(iface.ip) if full else str(iface)


def _nfc(v: Any) -> Any:
    if isinstance(v, bool | int):
        return v
    text = str(v)
    # NFC is a no-op for ASCII: skip the normaliser for the common case
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def _numeric(v: Any) -> str:
    return _decimal(v if isinstance(v, Decimal) else Decimal(str(v)))


def _uuid(v: Any) -> str:
    return str(v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)))


def _iso(v: Any) -> str:
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


def _float(v: Any) -> str:
    return repr(float(v))


def _bytes(v: Any) -> str:
    return bytes(v).hex()


Canon = Callable[[Any], Any]


def canon_function(pg_type: str) -> Canon:  # noqa: PLR0911, C901 - one branch per type family
    """The canonical form of values of Postgres type `pg_type`, chosen once per column."""
    t = pg_type.lower()
    if t.startswith("timestamp"):
        return _timestamp
    if t in {"numeric", "decimal"} or t.startswith("numeric("):
        return _numeric
    if t in {"jsonb", "json"}:
        return _jsonb
    if t.startswith("vector"):
        return _vector
    if t == "uuid":
        return _uuid
    if t == "inet":
        return _inet
    if t == "bytea":
        return _bytes
    if t in {"date", "time"} or t.startswith("time "):
        return _iso
    if t.endswith("[]"):
        inner = canon_function(t[:-2])
        return lambda v: [inner(x) for x in v]
    if t in {"double precision", "real", "float8", "float4"}:
        return _float
    return _nfc


def canon_value(pg_type: str, v: Any) -> Any:
    """The canonical form of one column value of Postgres type `pg_type`."""
    return None if v is None else canon_function(pg_type)(v)


class Canonicalizer:
    """Canonical forms of one entity's records (columns as the mapping names them)."""

    def __init__(self, em: Any, fingerprint_key: bytes) -> None:
        self.em = em
        self._key = fingerprint_key
        self._secret = {c.name for c in em.columns if c.secret}
        self._child_secret = {
            cm.table: {c.name for c in cm.columns if c.secret} for cm in em.children
        }
        # decided once per column, not per value
        self._fns = [canon_function(t) for t in em.pg_types]
        self._child_fns = {cm.table: [canon_function(t) for t in cm.pg_types] for cm in em.children}

    def _fp(self, value: Any) -> str:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        return "fp:" + hmac.new(self._key, data, hashlib.sha256).hexdigest()[:24]

    def _row(
        self, names: Sequence[str], fns: Sequence[Canon], row: Sequence[Any], secret: set[str]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for n, fn, v in zip(names, fns, row, strict=True):
            c = None if v is None else fn(v)
            out[n] = self._fp(c) if c is not None and n in secret else c
        return out

    def record(
        self, values: Sequence[Any], children: dict[str, list[tuple[Any, ...]]]
    ) -> CanonRecord:
        """A record from its column values (mapping order) and child rows (mapping order)."""
        em = self.em
        cols = self._row(em.column_names, self._fns, values, self._secret)
        kids: dict[str, dict[str, dict[str, Any]]] = {}
        for cm in em.children:
            rows: dict[str, dict[str, Any]] = {}
            for r in children.get(cm.table, ()):
                fns = self._child_fns[cm.table]
                canon = self._row(cm.column_names, fns, r, self._child_secret[cm.table])
                rows[orjson.dumps([canon[k] for k in cm.key_columns]).decode()] = canon
            kids[cm.table] = rows
        return CanonRecord(cols, kids)

    def fingerprint(self, rec: CanonRecord) -> str:
        """The keyed fingerprint of a whole record."""
        return rec.fingerprint(self._key)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list) and a and isinstance(a[0], float):
        return len(a) == len(b) and all(
            math.isclose(x, y, rel_tol=0.0, abs_tol=VECTOR_TOLERANCE)
            for x, y in zip(a, b, strict=True)
        )
    return bool(a == b)


def diff(legacy: CanonRecord, target: CanonRecord) -> list[str]:
    """The fields that differ: column names, `table.column` for a changed child row,
    `table[]` for a child row only one side has."""
    out = [n for n, v in legacy.columns.items() if not _same(v, target.columns.get(n))]
    for table, rows in legacy.children.items():
        other = target.children.get(table, {})
        if set(rows) != set(other):
            out.append(f"{table}[]")
        for k in rows.keys() & other.keys():
            out.extend(f"{table}.{c}" for c, v in rows[k].items() if not _same(v, other[k].get(c)))
    return sorted(set(out))
