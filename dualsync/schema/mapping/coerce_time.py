"""Time coercions: Extended JSON dates, epoch numbers and ISO 8601 strings, all UTC.

A `timestamptz` column reads a number as epoch milliseconds (JavaScript, MongoDB) unless
it says `epoch: s` (PHP `time()`, Unix) or `epoch: us`; it reads a wall-clock time
without an offset as UTC unless it says `naive_zone: Europe/Berlin` (the zone the legacy
app wrote it in). In a zone, a time that the clocks skipped (spring forward) is refused;
a time that happened twice (fall back) is the first of the two instants.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from typing import Any, Final, Literal

from dualsync.schema.mapping.coerce_base import CoercionError, utc

__all__ = ["EpochUnit", "timestamptz_coercer", "to_date", "to_time", "to_timestamptz", "zone"]

EpochUnit = Literal["s", "ms", "us"]
_DATE_LEN: Final = len("2024-01-01")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_UNITS: Final[dict[str, str]] = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}
_MICROS: Final[dict[str, int]] = {"s": 1_000_000, "ms": 1_000, "us": 1}


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone `name`; `ValueError` saying what to write when there is none."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name[:60]!r}: give an IANA name such as Europe/Berlin or UTC"
        ) from None


def _in_zone(d: dt.datetime, z: zoneinfo.ZoneInfo) -> dt.datetime:
    """A naive wall-clock time in `z`, as its UTC instant."""
    local = d.replace(tzinfo=z, fold=0)  # fold=0: the first of two instants in a fall-back
    try:
        instant = local.astimezone(dt.UTC)
        back = instant.astimezone(z).replace(tzinfo=None)
    except OverflowError:
        raise CoercionError("out of range once converted to UTC") from None
    if back != d.replace(fold=0):
        raise CoercionError(
            f"does not exist in {z.key} (the clocks skipped it: a daylight-saving change): "
            "fix the source, or check the column's naive_zone"
        )
    return instant


def timestamptz_coercer(
    epoch: EpochUnit = "ms", naive_zone: str | None = None
) -> Callable[[Any], dt.datetime]:
    """The coercer of a `timestamptz` column with these options."""
    unit, scale = _UNITS[epoch], _MICROS[epoch]
    z = zone(naive_zone) if naive_zone is not None else None

    def wall(d: dt.datetime) -> dt.datetime:
        return utc(d) if z is None or d.tzinfo is not None else _in_zone(d, z)

    def coerce(v: Any) -> dt.datetime:
        # Strings first: the common case (no class is both a str and a date or a number,
        # so the order of the branches decides nothing), with `wall` inlined.
        if isinstance(v, str):
            try:
                parsed = dt.datetime.fromisoformat(v.strip())
            except ValueError:
                raise CoercionError("not an ISO 8601 timestamp") from None
            return utc(parsed) if z is None or parsed.tzinfo is not None else _in_zone(parsed, z)
        if isinstance(v, dt.datetime):
            return wall(v)
        if isinstance(v, dt.date):
            return wall(dt.datetime.combine(v, dt.time()))  # midnight, a wall-clock time
        if isinstance(v, int | float) and not isinstance(v, bool):
            try:
                return _EPOCH + dt.timedelta(microseconds=v * scale)  # exact for integers
            except (OverflowError, ValueError):  # ValueError: NaN
                raise CoercionError(
                    f"epoch {unit} out of range (this column reads numbers as epoch {unit}; "
                    "set its `epoch:` to s, ms or us to match the source)"
                ) from None
        raise CoercionError(f"expected a timestamp, got {type(v).__name__}")

    return coerce


#: the default: epoch milliseconds, naive times in UTC
to_timestamptz: Final = timestamptz_coercer()


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
