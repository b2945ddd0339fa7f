"""Which consumers of this process have a transaction open, so one can wait for the others.

Two consumers of one process read consecutive entries of the same streams: a batch of
orders can reach Postgres while the batch holding their customers is still being applied
by the other consumer, uncommitted and so invisible to the foreign-key check. Bisecting
such a batch would cost up to 2 log2(n) more transactions (17 for 5,000 events, seen in
`bench.apply`) for children whose parents commit milliseconds later. A consumer whose
batch fails that way first waits for the batches the others have in hand, then tries the
whole batch once more (see `Applier._on_failure`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["InFlight"]


class InFlight:
    """The consumers of one process that are applying a batch right now."""

    def __init__(self) -> None:
        self._busy: dict[str, asyncio.Event] = {}

    @contextlib.asynccontextmanager
    async def applying(self, consumer: str) -> AsyncIterator[None]:
        """Mark `consumer` as applying for the duration of the block."""
        done = asyncio.Event()
        self._busy[consumer] = done
        try:
            yield
        finally:
            self._busy.pop(consumer, None)
            done.set()

    async def others_done(self, consumer: str, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until the batches other consumers have in hand now
        are finished; False when there were none (nothing to wait for)."""
        waits = [e.wait() for name, e in self._busy.items() if name != consumer]
        if not waits:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits), timeout_s)
        return True
