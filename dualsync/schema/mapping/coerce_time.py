"""Time coercions: Extended JSON dates, epoch milliseconds and ISO 8601 strings, all UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from dualsync.schema.mapping.coerce_base import CoercionError, utc

__all__ = ["to_date", "to_time", "to_timestamptz"]

_DATE_LEN: Final = len("2024-01-01")


def to_timestamptz(v: Any) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return utc(v)
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day, tzinfo=dt.UTC)
    if isinstance(v, int | float) and not isinstance(v, bool):
        try:  # epoch milliseconds, as JavaScript and MongoDB write them
            return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=v)
        except (OverflowError, ValueError):  # ValueError: NaN
            raise CoercionError("epoch milliseconds out of range") from None
    if isinstance(v, str):
        try:
            return utc(dt.datetime.fromisoformat(v.strip()))
        except ValueError:
            raise CoercionError("not an ISO 8601 timestamp") from None
    raise CoercionError(f"expected a timestamp, got {type(v).__name__}")


def to_date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return utc(v).date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        text = v.strip()
        try:
            return (
                dt.date.fromisoformat(text)
                if len(text) == _DATE_LEN
                else utc(dt.datetime.fromisoformat(text)).date()
            )
        except ValueError:
            raise CoercionError("not an ISO 8601 date") from None
    raise CoercionError(f"expected a date, got {type(v).__name__}")


def to_time(v: Any) -> dt.time:
    if isinstance(v, dt.time):
        return v
    if isinstance(v, str):
        try:
            return dt.time.fromisoformat(v.strip())
        except ValueError:
            raise CoercionError("not an ISO 8601 time (HH:MM[:SS])") from None
    raise CoercionError(f"expected a time, got {type(v).__name__}")
