"""Ages on the command line: `30m`, `12h`, `7d`, `1h30m` (what `dlq purge --older-than` and
`drift --since` take), one grammar for every command."""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

__all__ = ["AGE_EXAMPLES", "parse_age"]

#: what a message shows the user
AGE_EXAMPLES: Final = "30m, 12h, 7d or 1h30m"
_PART: Final = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_WHOLE: Final = re.compile(r"(?:\d+\s*[smhdw]\s*)+", re.IGNORECASE)
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> dt.timedelta | None:
    """The age `text` says (numbers with units s, m, h, d, w, summed), or None when it is
    not one. Raises `OverflowError` for an age beyond what a timedelta holds."""
    value = text.strip()
    if not _WHOLE.fullmatch(value):
        return None
    return sum(
        (dt.timedelta(**{_UNITS[u.lower()]: int(n)}) for n, u in _PART.findall(value)),
        dt.timedelta(),
    )
