"""What every coercion shares: the error type, the text rule and UTC normalisation.

Kept apart so the scalar, time and JSON coercions can each live in a module of their own
(`coerce.py`, `coerce_time.py`, `coerce_json.py`) without importing each other in a circle.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["CoercionError", "text_ok", "utc"]


class CoercionError(ValueError):
    """A value that does not fit its column type."""


def text_ok(value: str) -> str:
    if value.isascii():  # fast path: ASCII has no surrogates; only NUL to check
        if "\x00" in value:
            raise CoercionError("contains a NUL character, which PostgreSQL text cannot store")
        return value
    if "\x00" in value:
        raise CoercionError("contains a NUL character, which PostgreSQL text cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CoercionError("contains a lone surrogate (not valid UTF-8)") from None
    return value


def utc(d: dt.datetime) -> dt.datetime:
    try:
        return d.replace(tzinfo=dt.UTC) if d.tzinfo is None else d.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise CoercionError("out of range once converted to UTC") from None
