"""`ReadPath`: how an application asks where to read an entity from, and reads it.

The mode is read from Redis (`schema.readpath`) and cached for `ttl_s`; a pub/sub listener
refreshes it the moment on-call flips or rolls back, so every instance follows within a
second. If Redis is unreachable the client keeps its last known mode and logs that it does
(once per outage): it never switches store on its own. An entity never seen is `legacy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar

import orjson
import redis.asyncio as aredis

from dualsync.logging import get_logger
from dualsync.producers.shadow import Shadow, ShadowConfig
from dualsync.schema.readpath import Mode
from dualsync.schema.streams import UNREACHABLE, readpath_channel, readpath_key

__all__ = ["ReadPath"]

log = get_logger(__name__)
T = TypeVar("T")


class ReadPath:
    """The read-path client of one application process."""

    def __init__(
        self,
        client: aredis.Redis,
        *,
        prefix: str = "dualsync",
        ttl_s: float = 1.0,
        shadow: ShadowConfig | None = None,
    ) -> None:
        self._redis = client
        #: the shadow comparisons (None without a `ShadowConfig`)
        self.shadow = Shadow(shadow, client, prefix) if shadow is not None else None
        self._prefix = prefix
        self._ttl = ttl_s
        self._known: dict[str, tuple[Mode, float]] = {}
        #: per entity, how many change messages arrived: an HGET answered before a message
        #: must not overwrite the newer mode the message brought
        self._changes: dict[str, int] = {}
        self._listener: asyncio.Task[None] | None = None
        self._stale = False
        self._unknown: set[str] = set()

    async def start(self) -> None:
        """Listen for changes (also done on `async with`)."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="dualsync-readpath")

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(readpath_channel(self._prefix))
                    self._expire()  # a change may have come while we were not subscribed
                    while True:
                        # polled with its own timeout: a quiet channel is not an outage, even
                        # on a client with a short socket_timeout
                        msg = await pubsub.get_message(timeout=1.0)
                        if msg is not None and msg.get("type") == "message":
                            self._on_message(msg["data"])
            except UNREACHABLE:
                await asyncio.sleep(0.5)  # Redis away: the cached modes stand meanwhile

    def _expire(self) -> None:
        """Keep every known mode (the fallback while Redis is away), but ask Redis again."""
        self._known = {e: (m, -math.inf) for e, (m, _) in self._known.items()}

    def _on_message(self, data: bytes | str) -> None:
        try:
            change = orjson.loads(data)
            entity = str(change["entity"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return  # not a change message of ours
        mode = self._parse(entity, change.get("mode"))
        self._changes[entity] = self._changes.get(entity, 0) + 1
        if mode is not None:
            self._known[entity] = (mode, time.monotonic())

    def _parse(self, entity: str, raw: object) -> Mode | None:
        """The mode `raw` names; None (warned once per value) for one this client does not
        know, so the last known mode stands instead of a crash or a silent switch."""
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        try:
            return Mode(text)
        except ValueError:
            if text not in self._unknown:
                self._unknown.add(text)
                log.warning("readpath_unknown_mode_keeping_last", entity=entity,
                            mode=text[:40])  # fmt: skip
            return None

    async def mode(self, entity: str) -> Mode:
        """Where `entity` is read from now."""
        hit = self._known.get(entity)
        now = time.monotonic()
        if hit is not None and now - hit[1] < self._ttl:
            return hit[0]
        last = hit[0] if hit is not None else Mode.LEGACY
        seen = self._changes.get(entity, 0)
        try:
            raw = await self._redis.hget(readpath_key(self._prefix), entity)  # type: ignore[misc]  # redis stubs: Awaitable|str
        except UNREACHABLE as exc:
            if not self._stale:
                log.warning("readpath_redis_unreachable_keeping_mode", entity=entity,
                            mode=last.value, error=type(exc).__name__)  # fmt: skip
                self._stale = True
            return last
        self._stale = False
        if self._changes.get(entity, 0) != seen:  # a message came while we asked: it is newer
            return self._known[entity][0] if entity in self._known else last
        mode = self._parse(entity, raw) if raw else Mode.LEGACY
        if mode is None:
            return last
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
        (in `shadow` the answer is the legacy one, and with a `ShadowConfig` it is compared
        with Postgres in the background; `legacy` must then return the document as the
        legacy store holds it), Postgres in `postgres`."""
        mode = await self.mode(entity)
        if mode is Mode.POSTGRES:
            return await postgres(key)
        answer = await legacy(key)
        if mode is Mode.SHADOW and self.shadow is not None:
            self.shadow.observe(entity, key, answer, legacy)
        return answer

    async def aclose(self) -> None:
        """Stop listening; let running shadow compares finish and flush their counts."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, *UNREACHABLE):
                await self._listener
            self._listener = None
        if self.shadow is not None:
            await self.shadow.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
