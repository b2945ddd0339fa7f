"""Timestamp column options: `epoch: s|ms|us` for numbers, `naive_zone:` for wall-clock strings.

A number in a `timestamptz` column is epoch milliseconds unless the column says
otherwise (PHP's `time()` is seconds); a timestamp without an offset is UTC unless the
column names the zone the legacy app wrote it in. Both are declared, never guessed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dualsync.schema.mapping import MappingError, MappingFileError, load_mapping
from dualsync.schema.mapping.coerce import CoercionError
from dualsync.schema.mapping.coerce_time import timestamptz_coercer

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
BERLIN = ZoneInfo("Europe/Berlin")
PURE = settings(deadline=None)
seconds = st.integers(-62135596800, 253402300799)  # 0001-01-01 .. 9999-12-31
naive = st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31))
ZONES = st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
                         "UTC", "Pacific/Chatham"])  # fmt: skip


@PURE
@given(seconds)
def test_epoch_seconds(n: int) -> None:
    assert timestamptz_coercer(epoch="s")(n) == EPOCH + dt.timedelta(seconds=n)
    assert timestamptz_coercer(epoch="ms")(n * 1000) == EPOCH + dt.timedelta(seconds=n)
    assert timestamptz_coercer(epoch="us")(n * 10**6) == EPOCH + dt.timedelta(seconds=n)
    assert timestamptz_coercer()(n * 1000) == EPOCH + dt.timedelta(seconds=n)  # default: ms


@PURE
@given(st.integers(1, 10**6))
def test_epoch_seconds_with_a_fraction(n: int) -> None:
    got = timestamptz_coercer(epoch="s")(1_700_000_000 + n / 1000)
    assert abs(got - (EPOCH + dt.timedelta(seconds=1_700_000_000, milliseconds=n))) < dt.timedelta(
        microseconds=2
    )


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_epoch_out_of_range_says_the_unit(unit: str) -> None:
    names = {"s": "seconds", "ms": "milliseconds", "us": "microseconds"}
    for bad in (10**20, float("nan"), float("inf")):
        with pytest.raises(CoercionError, match=f"epoch {names[unit]}"):
            timestamptz_coercer(epoch=unit)(bad)  # type: ignore[arg-type]  # unit: a Literal


@PURE
@given(naive, ZONES)
def test_naive_zone(d: dt.datetime, zone: str) -> None:
    z = ZoneInfo(zone)
    coerce = timestamptz_coercer(naive_zone=zone)
    local = d.replace(tzinfo=z)
    if local.astimezone(dt.UTC).astimezone(z).replace(tzinfo=None) != d:  # in a DST gap
        with pytest.raises(CoercionError, match=f"does not exist in {zone}"):
            coerce(d.isoformat())
        return
    try:
        want = local.astimezone(dt.UTC)
    except OverflowError:
        return  # year 1 or 9999 once moved to UTC; refused like any out-of-range instant
    assert coerce(d.isoformat()) == want  # a wall-clock time in the zone ...
    assert coerce(d.isoformat()).tzinfo is dt.UTC  # ... stored as its UTC instant
    assert coerce(d.isoformat(sep=" ")) == want
    assert coerce(d) == want  # a naive datetime object too
    assert coerce(d.isoformat() + "Z") == d.replace(tzinfo=dt.UTC)  # an offset wins
    assert coerce(d.isoformat() + "+01:00") == d.replace(tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert timestamptz_coercer()(d.isoformat()) == d.replace(tzinfo=dt.UTC)  # default: UTC


def test_naive_zone_edges() -> None:
    coerce = timestamptz_coercer(naive_zone="Europe/Berlin")
    # the fall-back fold: 02:30 happens twice; the first (summer time) is taken
    assert coerce("2024-10-27 02:30:00") == dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC)
    # the spring-forward gap: 02:30 never happened in Berlin that night
    with pytest.raises(CoercionError, match="does not exist in Europe/Berlin"):
        coerce("2024-03-31 02:30:00")
    assert coerce("2024-03-01") == dt.datetime(2024, 2, 29, 23, 0, tzinfo=dt.UTC)  # midnight
    assert coerce(dt.date(2024, 3, 1)) == dt.datetime(2024, 2, 29, 23, 0, tzinfo=dt.UTC)
    with pytest.raises(CoercionError):
        coerce("0001-01-01T00:30:00")  # before year 1 in UTC


MAPPING = """\
version: 1
app: t
entities:
  events:
    table: events
    key: {column: id}
    columns:
      at:
        from: at
        type: timestamptz
        epoch: s
        naive_zone: Europe/Berlin
      seen: {from: seen, type: timestamptz}
"""


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return load_mapping(path)


def test_options_reach_the_column(tmp_path: Path) -> None:
    em = _load(tmp_path, MAPPING).entity("events")
    values = em.to_rows("e1", {"at": 1_700_000_000, "seen": 1_700_000_000_000}).values
    assert values[1] == values[2] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=dt.UTC)
    values = em.to_rows("e1", {"at": "2024-07-01 12:00:00", "seen": "2024-07-01 12:00:00"}).values
    assert values[1] == dt.datetime(2024, 7, 1, 10, tzinfo=dt.UTC)
    assert values[2] == dt.datetime(2024, 7, 1, 12, tzinfo=dt.UTC)
    with pytest.raises(
        MappingError, match=r"column at \(timestamptz\): .*does not exist in Europe"
    ):
        em.to_rows("e1", {"at": "2024-03-31 02:30:00"})


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("        epoch: s", "        epoch: seconds", 11, "columns.at.epoch: Input should be 's'"),
        ("        naive_zone: Europe/Berlin", "        naive_zone: Europe/Berln", 12,
         "columns.at.naive_zone: Value error, unknown time zone 'Europe/Berln'"),
        ("        naive_zone: Europe/Berlin", "        naive_zone: ../../etc/passwd", 12,
         "unknown time zone"),
        ("        type: timestamptz", "        type: text", 11,
         "columns.at.epoch: Value error, `epoch` applies only to `type: timestamptz`"),
        ("      seen: {from: seen, type: timestamptz}",
         "      seen: {from: seen, type: date, naive_zone: UTC}", 13,
         "columns.seen.naive_zone: Value error, `naive_zone` applies only to `type: timestamptz`"),
    ],
    ids=["bad unit", "unknown zone", "a path, not a zone", "epoch on text", "zone on date"],
)  # fmt: skip
def test_options_are_validated_at_their_line(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    assert old in MAPPING
    with pytest.raises(MappingFileError) as err:
        _load(tmp_path, MAPPING.replace(old, new))
    assert f"m.yaml:{line}: entities.events." in str(err.value)
    assert message in str(err.value)
