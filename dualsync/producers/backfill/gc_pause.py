"""Fewer garbage collections while a backfill runs.

Every chunk makes some 10^5 container objects (documents, rows, tuples) that live until
the chunk is committed. With CPython's default thresholds (700 allocations) they trigger
young collections constantly and, surviving them, make full collections of the whole heap
frequent too: a third of the time spent mapping and parsing 20,000 donna users went
to the collector (measured with `bench.backfill`). A run raises the thresholds and
restores the previous ones when it ends; nested or concurrent runs restore them only when
the last one ends. Nothing is disabled: cycles are still collected.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["fewer_collections"]

#: allocations between young collections while a run is on (CPython's default: 700)
YOUNG_THRESHOLD = 20_000
#: collections of one generation between collections of the next (default: 10)
OLDER_THRESHOLD = 20

_active = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the GC thresholds for the duration of the block (never lower them)."""
    global _active, _saved  # noqa: PLW0603 - one process-wide setting, counted
    if _active == 0:
        _saved = gc.get_threshold()
        t0, t1, t2 = _saved
        gc.set_threshold(
            max(YOUNG_THRESHOLD, t0), max(OLDER_THRESHOLD, t1), max(OLDER_THRESHOLD, t2)
        )
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        if _active == 0:
            gc.set_threshold(*_saved)
