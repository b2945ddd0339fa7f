"""`ReadPath`: how an application asks where to read an entity from, and reads it.

The mode is read from Redis (`schema.readpath`) and cached for `ttl_s`; a pub/sub listener
refreshes it the moment on-call flips or rolls back, so every instance follows within a
second. If Redis is unreachable the client keeps its last known mode and logs that it does
(once per outage): it never switches store on its own. An entity never seen is `legacy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar

import orjson
import redis.asyncio as aredis

from dualsync.logging import get_logger
from dualsync.schema.readpath import Mode
from dualsync.schema.streams import UNREACHABLE, readpath_channel, readpath_key

__all__ = ["ReadPath"]

log = get_logger(__name__)
T = TypeVar("T")


class ReadPath:
    """The read-path client of one application process."""

    def __init__(
        self, client: aredis.Redis, *, prefix: str = "dualsync", ttl_s: float = 1.0
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl = ttl_s
        self._known: dict[str, tuple[Mode, float]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._stale = False

    async def start(self) -> None:
        """Listen for changes (also done on `async with`)."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="dualsync-readpath")

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:  # closed on cancel too
                    await pubsub.subscribe(readpath_channel(self._prefix))
                    async for msg in pubsub.listen():
                        if msg.get("type") != "message":
                            continue
                        data = orjson.loads(msg["data"])
                        self._known[str(data["entity"])] = (Mode(data["mode"]), time.monotonic())
            except UNREACHABLE:
                await asyncio.sleep(0.5)  # Redis away: the cached modes stand meanwhile

    async def mode(self, entity: str) -> Mode:
        """Where `entity` is read from now."""
        hit = self._known.get(entity)
        now = time.monotonic()
        if hit is not None and now - hit[1] < self._ttl:
            return hit[0]
        try:
            raw = await self._redis.hget(readpath_key(self._prefix), entity)  # type: ignore[misc]  # redis stubs: Awaitable|str
        except UNREACHABLE as exc:
            last = hit[0] if hit is not None else Mode.LEGACY
            if not self._stale:
                log.warning("readpath_redis_unreachable_keeping_mode", entity=entity,
                            mode=last.value, error=str(exc))  # fmt: skip
                self._stale = True
            return last
        self._stale = False
        mode = Mode(raw.decode() if isinstance(raw, bytes) else raw) if raw else Mode.LEGACY
        self._known[entity] = (mode, now)
        return mode

    async def read(
        self,
        entity: str,
        key: str,
        legacy: Callable[[str], Awaitable[T]],
        postgres: Callable[[str], Awaitable[T]],
    ) -> T:
        """Read `key` from where the mode says: the legacy store in `legacy` and `shadow`
        (in `shadow` the answer is the legacy one), Postgres in `postgres`."""
        if await self.mode(entity) is Mode.POSTGRES:
            return await postgres(key)
        return await legacy(key)

    async def aclose(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, *UNREACHABLE):
                await self._listener
            self._listener = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
