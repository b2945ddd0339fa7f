"""Nested parts of Donna's JSON files: profile, preferences, memory entries, metadata.

These become jsonb (profile, preferences, metadata, memory values) or the user_memory
child rows, so they are built apart from the flat fields of each file. Empty PHP arrays
are written as `[]` (see `_php.php_array`).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any, Final

from examples._legacy import between
from examples.donna import _corpus as c
from examples.donna._php import atom, php_array, token, unix

__all__ = ["memories", "message_metadata", "preferences", "profile", "session_metadata"]

#: memory types whose entries expire, and after how many days
_EXPIRING: Final = {"context": (1, 7, 30)}
_PAIRS: Final = tuple((t, k) for t, keys in c.MEMORIES.items() for k in keys)


def profile(r: random.Random, tz: str) -> dict[str, Any] | list[Any]:
    """The user's profile array: filled in over time, empty (`[]`) for new sign-ups."""
    out: dict[str, Any] = {}
    if r.random() < 0.85:
        out["timezone"] = tz
    if r.random() < 0.6:
        out["locale"] = r.choice(("en-US", "fr-FR", "es-MX", "ja-JP", "ar-SA", "he-IL", "zh-CN"))
    if r.random() < 0.4:
        out["occupation"] = r.choice(c.OCCUPATIONS)
    if r.random() < 0.3:
        out["location"] = {"city": r.choice(c.CITIES), "country": None}
    return php_array(out)


def preferences(r: random.Random) -> dict[str, Any] | list[Any]:
    """Settings screens' values; a calendar integration keeps its OAuth refresh token here."""
    out: dict[str, Any] = {}
    if r.random() < 0.7:
        out["tone"] = r.choice(("friendly", "concise", "formal", "playful 😄"))
        out["notifications"] = {"email": r.random() < 0.4, "push": r.random() < 0.7}
    if r.random() < 0.3:
        out["quiet_hours"] = ["22:00", "07:00"]
    if r.random() < 0.2:
        out["integrations"] = {
            "google_calendar": {
                "connected": True,
                "calendar_id": "primary",
                "refresh_token": token(r, "1//0", 70),
            }
        }
    return php_array(out)


def memories(r: random.Random, lo: dt.datetime, hi: dt.datetime) -> list[dict[str, Any]]:
    """The user's memory entries: at most one per (type, key), as setUserMemory keeps them."""
    out = []
    for kind, key in r.sample(_PAIRS, k=r.randint(0, 9)):
        created = between(r, lo, hi)
        updated = between(r, created, hi)
        entry: dict[str, Any] = {
            "type": kind,
            "key": key,
            "value": r.choice(c.MEMORIES[kind][key]),
            "created_at": atom(created),
            "updated_at": atom(updated),
        }
        if kind in _EXPIRING:
            entry["expires_at"] = atom(updated + dt.timedelta(days=r.choice(_EXPIRING[kind])))
        elif r.random() < 0.3:
            entry["expires_at"] = None  # written by the DAL's setUserMemory(..., ttl: null)
        out.append(entry)
    if out and r.random() < 0.2:
        # a reminder bookkeeping value the app stores with time(): unix seconds, in jsonb
        stamp = between(r, lo, hi)
        out.append(
            {"type": "context", "key": "last_reminder_at", "value": unix(stamp),
             "created_at": atom(stamp), "updated_at": atom(stamp), "expires_at": None}
        )  # fmt: skip
    return out


def message_metadata(r: random.Random, role: str) -> dict[str, Any] | list[Any]:
    """Per-message metadata: model and usage for replies, client and attachments for users."""
    out: dict[str, Any] = {}
    if role == "assistant":
        out = {
            "model": r.choice(c.MODELS),
            "finish_reason": r.choices(("stop", "length"), (19, 1))[0],
            "latency_ms": r.randint(300, 12_000),
        }
    elif role == "user" and r.random() < 0.5:
        out["client"] = r.choice(c.CLIENTS)
        if r.random() < 0.2:
            out["attachments"] = [
                {"name": r.choice(("facture.pdf", "IMG_2041.HEIC", "見積書.xlsx")),
                 "size": r.randint(10_000, 4_000_000)}
            ]  # fmt: skip
    return php_array(out)


def session_metadata(r: random.Random, at: dt.datetime) -> dict[str, Any] | list[Any]:
    """Session metadata; `started` is `time()` (unix seconds)."""
    if r.random() < 0.15:
        return []
    out: dict[str, Any] = {"client": r.choice(c.CLIENTS), "started": unix(at)}
    if r.random() < 0.5:
        out["model"] = r.choice(c.MODELS)
    if r.random() < 0.2:
        out["summary"] = None
    return out
