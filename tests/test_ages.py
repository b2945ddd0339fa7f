"""One grammar for ages on the command line (`dlq purge --older-than`, `drift --since`)."""

from __future__ import annotations

import datetime as dt

import pytest

from dualsync.ops.ages import parse_age

td = dt.timedelta


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("30m", td(minutes=30)),
        ("12h", td(hours=12)),
        ("7d", td(days=7)),
        ("2w", td(weeks=2)),
        ("0s", td(0)),
        ("1h30m", td(hours=1, minutes=30)),
        (" 1H 30M ", td(hours=1, minutes=30)),
        ("1d1d", td(days=2)),
    ],
)
def test_ages(text: str, age: dt.timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "soon", "7", "d7", "7 days", "-1h", "1.5h", "1h and 2m"])
def test_not_an_age(text: str) -> None:
    assert parse_age(text) is None


def test_an_age_beyond_a_timedelta_overflows() -> None:
    with pytest.raises(OverflowError):
        parse_age("9999999999d")
