"""Versions for stores that have none: a hybrid logical clock in microseconds, and UUIDv7 ids.

The clock returns max(wall-clock µs, last + 1): strictly increasing within a process,
close to real time (so it orders like an app-supplied `updatedAt` in µs), and it never
goes backwards when the wall clock does. `observe(v)` folds in a version seen elsewhere
(e.g. read back from the store) so a later local write still wins.
"""

from __future__ import annotations

import random
import threading
import time

__all__ = ["HybridClock", "uuid7"]

_rng = random.Random()


class HybridClock:
    """Thread-safe monotonic µs clock."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        """Next version: strictly greater than every version this clock returned or observed."""
        wall = time.time_ns() // 1000
        with self._lock:
            self._last = wall if wall > self._last else self._last + 1
            return self._last

    def observe(self, version: int) -> None:
        """Make later `now()` values exceed `version`."""
        with self._lock:
            self._last = max(self._last, version)


def uuid7() -> str:
    """A UUIDv7 (RFC 9562): 48-bit Unix ms timestamp, then random bits; sorts by time.

    Ids need uniqueness, not secrecy: `random` (reseeded from urandom at import and after
    fork) is several times cheaper than `os.urandom` + `uuid.UUID` on the publish path.
    """
    ms = time.time_ns() // 1_000_000
    rand = _rng.getrandbits(74)
    value = (ms & ((1 << 48) - 1)) << 80 | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64
    h = f"{value | (0b10 << 62) | (rand & ((1 << 62) - 1)):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
