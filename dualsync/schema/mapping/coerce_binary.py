"""bytea coercion: Extended JSON `$binary` values, and strings when the column names their encoding.

`$binary` decodes to `bytes` (subtype 0), a `bson.Binary` (other subtypes) or a `UUID`
(subtype 4): all are bytes, stored as they are (a UUID as its 16 bytes). A string is
text, not bytes, unless the column says how the legacy app encoded them: `encoding:
base64` (standard or URL-safe alphabet, padding optional) or `encoding: hex` (optionally
PostgreSQL's own `\\x` prefix). Nothing is guessed: "cafe" is valid base64 *and* hex.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable
from typing import Any, Final, Literal

from dualsync.schema.mapping.coerce_base import CoercionError

__all__ = ["Encoding", "bytea_coercer", "to_bytea"]

Encoding = Literal["base64", "hex"]
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z|[A-Za-z0-9_-]*={0,2}\Z")
_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
_HEX: Final = re.compile(r"(?:\\x)?(?:[0-9A-Fa-f]{2})*\Z")


def _binary(v: Any) -> bytes | None:
    if isinstance(v, bytes | bytearray | memoryview):  # bson.Binary is a bytes
        return bytes(v)
    if isinstance(v, uuid.UUID):
        return v.bytes
    return None


def _from_base64(text: str) -> bytes:
    if not _BASE64.match(text):
        raise CoercionError("not base64 (A-Z a-z 0-9 + / or - _, then up to two =)")
    data = text.rstrip("=").encode("ascii").translate(_URLSAFE)
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except binascii.Error:
        raise CoercionError("not base64 (its length cannot be a whole number of bytes)") from None


def _from_hex(text: str) -> bytes:
    if not _HEX.match(text):
        raise CoercionError("not hex (pairs of 0-9 a-f, optionally after \\x)")
    return bytes.fromhex(text.removeprefix("\\x"))


def bytea_coercer(encoding: Encoding | None = None) -> Callable[[Any], bytes]:
    """The coercer of a `bytea` column; `encoding` says how a string holds the bytes."""
    decode = {"base64": _from_base64, "hex": _from_hex, None: None}[encoding]

    def coerce(v: Any) -> bytes:
        data = _binary(v)
        if data is not None:
            return data
        if isinstance(v, str):
            if decode is None:
                raise CoercionError(
                    "expected binary data ($binary), got a string: set `encoding: base64` "
                    "(or hex) on the column if the app stores the bytes as text"
                )
            return decode(v)
        raise CoercionError(f"expected binary data ($binary), got {type(v).__name__}")

    return coerce


#: a bytea column without `encoding`: `$binary` values only
to_bytea: Final = bytea_coercer()
