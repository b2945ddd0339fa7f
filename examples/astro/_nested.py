"""Nested sub-documents of the astro legacy documents: settings, raw chart payloads, signs.

These become JSONB (settings, raw_chart_payload) or are derived from the birthday (the
Sun sign), so they are built apart from the flat fields of each collection.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, Final

from examples._legacy import between
from examples.astro import _corpus as c

__all__ = ["raw_chart", "settings", "sun_sign"]

# First day of each sign's month range: the day the Sun changes sign, per month.
_CUSPS: Final = (20, 19, 21, 20, 21, 21, 23, 23, 23, 23, 22, 22)


def sun_sign(day: dt.date) -> str:
    """The tropical Sun sign of a birthday (cusp days rounded to the later sign)."""
    after = day.day >= _CUSPS[day.month - 1]
    return c.SIGNS[(day.month + (9 if after else 8)) % 12]


def settings(r: random.Random, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    """A user's settings object: nested, sometimes empty, sometimes holding a date."""
    if r.random() < 0.1:
        return {}
    out: dict[str, Any] = {
        "notifications": {"push": r.random() < 0.7, "email": r.random() < 0.3},
        "theme": r.choice(("light", "dark", "system")),
        "language": r.choice(("en", "es", "ja", "ru", "ar", "hi")),
        "houseSystem": r.choice(("placidus", "whole-sign", "koch")),
    }
    if r.random() < 0.3:
        out["notifications"]["quietHours"] = {"from": "22:00", "to": "07:30"}
    if r.random() < 0.5:
        out["onboardedAt"] = between(r, start, end)
    return out


def raw_chart(r: random.Random, at: dt.datetime) -> dict[str, Any]:
    """The chart engine's raw output, kept as a JSON payload."""
    planets = [
        {
            "name": p,
            "sign": r.choice(c.SIGNS),
            "degree": round(r.uniform(0, 30), 4),
            "house": r.randint(1, 12) if r.random() < 0.8 else None,
            "retrograde": p not in {"Sun", "Moon"} and r.random() < 0.2,
        }
        for p in c.PLANETS
    ]
    return {"engine": "swisseph 2.10.03", "planets": planets, "computedAt": at}
