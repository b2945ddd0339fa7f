"""arq's `Worker`, made to ride out a Redis outage instead of dying on the first error.

arq retries only its initial connection: later, one failed poll crashes the worker
(python-arq/arq#386, #435), and redis-py 5's retry helper does not cover the
connection check in `get_connection`, so `RedisSettings.retry` cannot help. Here a
failed poll is logged and the next one tried, until Redis has been gone for
`outage_s`; then the error propagates and the worker stops loudly. `close()` still
stops the consumers when Redis is gone (arq deletes its health key first, which fails).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from arq.worker import Worker, get_kwargs

from dualsync.logging import get_logger
from dualsync.schema.streams import UNREACHABLE

__all__ = ["OutageTolerantWorker", "build_worker"]

log = get_logger(__name__)


class OutageTolerantWorker(Worker):
    """An arq worker whose poll loop survives Redis outages shorter than `outage_s`."""

    def __init__(self, *args: Any, outage_s: float = 60.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage_s = outage_s
        self._down_since: float | None = None

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except UNREACHABLE as exc:
            now = time.monotonic()
            if self._down_since is None:
                self._down_since = now
                log.warning("redis_unreachable", error=str(exc), will_stop_after_s=self.outage_s)
            if now - self._down_since >= self.outage_s:
                raise
            return
        if self._down_since is not None:
            log.info("redis_back", after_s=round(time.monotonic() - self._down_since, 1))
            self._down_since = None

    async def close(self) -> None:
        try:
            await super().close()
        except UNREACHABLE:
            if self.on_shutdown is not None:
                await self.on_shutdown(self.ctx)
            with contextlib.suppress(*UNREACHABLE):
                await self.pool.close(close_connection_pool=True)
            self._pool = None


def build_worker(settings_cls: type, *, outage_s: float, **kwargs: Any) -> OutageTolerantWorker:
    """`arq.worker.create_worker`, building an `OutageTolerantWorker`."""
    return OutageTolerantWorker(**{**get_kwargs(settings_cls), **kwargs}, outage_s=outage_s)
