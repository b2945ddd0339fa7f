"""Reading the shard streams as consumer group `apply`: blocking reads and batch linger.

A batch closes when it is full (`batch_size`) or `linger_ms` after its first entry,
whichever comes first: small batches under light load (low latency), full batches
under heavy load (throughput).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import redis.asyncio as aredis
from redis.exceptions import ResponseError

from dualsync.worker.entry import Entry, parse_entries

__all__ = ["StreamReader"]


class StreamReader:
    """XREADGROUP over every shard stream for one consumer."""

    def __init__(
        self,
        client: aredis.Redis,
        streams: list[str],
        group: str,
        consumer: str,
        *,
        batch_size: int,
        linger_ms: int,
        block_ms: int,
    ) -> None:
        self._redis = client
        self.streams = streams
        self.group = group
        self.consumer = consumer
        self._batch = batch_size
        self._linger = linger_ms / 1000
        self._block = block_ms

    async def ensure_groups(self) -> None:
        """Create the group on every stream (MKSTREAM), from the beginning of the stream."""
        for s in self.streams:
            try:
                await self._redis.xgroup_create(s, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _read(self, count: int, block: int | None) -> list[Entry]:
        # COUNT applies per stream: split the room so a batch never exceeds its size.
        per_stream = max(1, -(-count // len(self.streams)))
        resp = await self._redis.xreadgroup(
            self.group,
            self.consumer,
            dict.fromkeys(self.streams, ">"),
            count=per_stream,
            block=block,
        )
        out: list[Entry] = []
        for stream, raw in cast("list[tuple[bytes, Any]]", resp or []):
            entries, _ = parse_entries(stream, raw)
            out.extend(entries)
        return out

    async def read_batch(self, limit: int | None = None, block_ms: int | None = -1) -> list[Entry]:
        """Block until something arrives (at most `block_ms`; None: do not block; default:
        the reader's `block_ms`), then linger to fill up to `limit` entries."""
        size = limit or self._batch
        batch = await self._read(size, self._block if block_ms == -1 else block_ms)
        if not batch or len(batch) >= size or self._linger <= 0:
            return batch
        deadline = time.monotonic() + self._linger
        while len(batch) < size:
            more = await self._read(size - len(batch), None)
            batch.extend(more)
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not more:
                await asyncio.sleep(min(left, 0.001))
        return batch
