"""How a Node Discord bot writes ids and instants into its JSON files.

Tzurot keeps no ObjectIds and no BSON dates: its ids are Discord snowflakes (decimal
strings, because JavaScript numbers lose precision past 2**53) and its instants are
either `Date.now()` (epoch milliseconds, a JSON number) or `new Date().toISOString()`
(`2025-05-14T09:31:02.123Z`). Both forms sit side by side in the same files, so the
generator writes both and the mapping must read both.

Snowflakes are minted like Discord mints them (milliseconds since the Discord epoch,
5-bit worker, 5-bit process, 12-bit increment) from the generator's own
`random.Random`, so a seed always yields the same ids; an account made in 2015 gets a
17-digit id, one made in 2024 a 19-digit id, as on Discord.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Final

__all__ = ["DISCORD_EPOCH", "Snowflakes", "epoch_ms", "iso"]

#: 2015-01-01T00:00:00Z, the zero of every snowflake's timestamp
DISCORD_EPOCH: Final = dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
_UNIX: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_ms(at: dt.datetime) -> int:
    """`Date.now()` at `at`: whole milliseconds since the Unix epoch."""
    return (at - _UNIX) // dt.timedelta(milliseconds=1)


def iso(at: dt.datetime) -> str:
    """`Date.prototype.toISOString()` at `at`: UTC, milliseconds, a `Z` suffix."""
    return at.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Snowflakes:
    """Mints unique, deterministic Discord snowflakes whose timestamp is `at`."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._increment = rng.randrange(1 << 12)
        self._seen: set[str] = set()

    def mint(self, at: dt.datetime) -> str:
        """A new snowflake created "at" `at` (a decimal string, as Discord sends it)."""
        ms = (at - DISCORD_EPOCH) // dt.timedelta(milliseconds=1)
        while True:
            self._increment = (self._increment + 1) % (1 << 12)
            worker, process = self._rng.randrange(32), self._rng.randrange(32)
            flake = str(ms << 22 | worker << 17 | process << 12 | self._increment)
            if flake not in self._seen:
                self._seen.add(flake)
                return flake
