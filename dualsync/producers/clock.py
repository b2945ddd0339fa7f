"""Versions for stores that have none: a hybrid logical clock in microseconds, and UUIDv7 ids.

The clock returns max(wall-clock µs, last + 1): strictly increasing, close to real time,
and it never goes backwards when the wall clock does. `observe(v)` folds in a version
seen elsewhere (e.g. read back from the store) so a later local write still wins. The
publishers never feed app-supplied versions into it: an entity's versions come either
from the app or from this clock (see `VersionDomainError`), so one entity's large counter
cannot push every clock-versioned entity ahead.

Across restarts: a version lower than one already published loses the version gate, so
with a `state_file` (the publisher's spool directory) the clock persists a reserve-ahead
high-water mark. Whenever it is about to pass the reserved value it first writes
`value + lease` (1 s by default: fsync, atomic rename, directory fsync), so the hot path
pays at most one fsync per lease; a new clock on the same file starts above the reserve,
hence above everything handed out before, whatever the wall clock says now. Processes
sharing the directory merge under a flock (the file keeps the highest reserve). The cost:
right after a restart the clock can run up to one lease ahead of the wall clock until
the wall catches up.

Without a `state_file` the clock lives in memory only: strictly increasing per process,
but after a restart it starts from the wall clock again (an NTP step back, or a clock
pushed ahead by `observe`, can then hand out versions below earlier ones).
"""

from __future__ import annotations

import fcntl
import random
import threading
import time
from pathlib import Path

from dualsync.producers.durable import make_dir, write_atomic
from dualsync.producers.errors import ClockStateError

__all__ = ["DEFAULT_LEASE_US", "HybridClock", "uuid7"]

DEFAULT_LEASE_US = 1_000_000

_rng = random.Random()


def _read_mark(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0
    if not (text.isascii() and text.isdigit()):
        raise ClockStateError(
            f"clock state file {path} holds {text[:30]!r}, not a µs version; it is only "
            "written by atomic rename, so something else changed it: restore it, or delete "
            "it if no publisher on this directory ever ran with its clock ahead of the wall"
        )
    return int(text)


class HybridClock:
    """Thread-safe monotonic µs clock; persistent across restarts with a `state_file`."""

    def __init__(self, state_file: Path | None = None, *, lease_us: int = DEFAULT_LEASE_US) -> None:
        self._lock = threading.Lock()
        self._state = state_file
        self._lease = lease_us
        # Every value handed out by an earlier clock on this file is <= the stored reserve.
        self._last = self._reserved = _read_mark(state_file) if state_file is not None else 0

    def now(self) -> int:
        """Next version: strictly greater than every version this clock returned or observed."""
        wall = time.time_ns() // 1000
        with self._lock:
            nxt = wall if wall > self._last else self._last + 1
            if self._state is not None and nxt > self._reserved:
                self._reserve(self._state, nxt + self._lease)
            self._last = nxt
            return nxt

    def observe(self, version: int) -> None:
        """Make later `now()` values exceed `version` (the next `now()` persists it)."""
        with self._lock:
            self._last = max(self._last, version)

    def _reserve(self, state: Path, value: int) -> None:
        make_dir(state.parent)
        with state.with_name(state.name + ".lock").open("ab") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file closes
            stored = _read_mark(state)
            if value > stored:
                write_atomic(state, str(value).encode())
        self._reserved = value


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
