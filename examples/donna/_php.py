"""What Donna's PHP code writes into its JSON files: uniqid() ids, Clerk ids, PHP dates.

Kept apart from the generator because these are the shapes a migration most often gets
wrong. The app calls `date_default_timezone_set('UTC')` in its config, so:

* `date('Y-m-d H:i:s')` is UTC wall time *without* a zone (the code written first);
* `date(DATE_ATOM)` / `date('c')` carries its offset: `+00:00` for server-side stamps, the
  user's own offset where the chat endpoint formats in the user's timezone;
* `time()` is unix *seconds*. dualsync reads every number it coerces to `timestamptz` as
  epoch *milliseconds*, so the app's `time()` values only ever land inside jsonb (session
  metadata, memory values, log context), never in a timestamp column (see mapping.yaml).

`json_encode([])` writes `[]`: an empty PHP array is a JSON list even where a non-empty one
is an object, so empty `profile`, `preferences`, `metadata` and log `context` are `[]`.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import string
from typing import Any, Final

__all__ = ["atom", "clerk_user_id", "php_array", "rfc3339_ms", "token", "uniqid", "unix", "ymd_his"]

_BASE62: Final = string.digits + string.ascii_letters


def uniqid(prefix: str, at: dt.datetime) -> str:
    """PHP's `uniqid($prefix)`: 8 hex digits of unix seconds, then 5 of microseconds."""
    return f"{prefix}{int(at.timestamp()):08x}{at.microsecond:05x}"


def clerk_user_id(rng: random.Random) -> str:
    """A Clerk user id (`user_2` + 26 base62 characters, 32 in all)."""
    return "user_2" + "".join(rng.choice(_BASE62) for _ in range(26))


def token(rng: random.Random, prefix: str, nbytes: int) -> str:
    """An opaque credential: `prefix` + url-safe base64 of `nbytes` random bytes."""
    return prefix + base64.urlsafe_b64encode(rng.randbytes(nbytes)).rstrip(b"=").decode()


def ymd_his(at: dt.datetime) -> str:
    """`date('Y-m-d H:i:s')` under UTC: seconds, no zone."""
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def atom(at: dt.datetime, offset_minutes: int = 0) -> str:
    """`date(DATE_ATOM)` in a zone `offset_minutes` east of UTC (`+00:00`, never `Z`)."""
    zone = dt.timezone(dt.timedelta(minutes=offset_minutes))
    return at.astimezone(zone).isoformat(timespec="seconds")


def rfc3339_ms(at: dt.datetime) -> str:
    """`DATE_RFC3339_EXTENDED` ('Y-m-d\\TH:i:s.vP') under UTC: the LogManager's stamp."""
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def unix(at: dt.datetime) -> int:
    """`time()`: unix seconds."""
    return int(at.timestamp())


def php_array(value: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """What `json_encode` writes for a PHP associative array: `[]` when it is empty."""
    return value or []
