"""Key-ordered chunking and seeded sampling shared by the file adapters."""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence

__all__ = ["chunks_after", "sample"]


def chunks_after(keys: Sequence[str], after: str | None, chunk: int) -> list[list[str]]:
    """`keys` (sorted) strictly after `after`, cut into chunks of `chunk`."""
    start = 0 if after is None else bisect.bisect_right(keys, after)
    return [list(keys[i : i + chunk]) for i in range(start, len(keys), max(chunk, 1))]


def sample(keys: Sequence[str], n: int, seed: int) -> list[str]:
    """Up to `n` distinct keys, the same for the same seed and key set."""
    if n >= len(keys):
        return list(keys)
    return random.Random(seed).sample(list(keys), n)
