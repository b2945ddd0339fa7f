"""Reading the shard streams as consumer group `apply`: blocking reads and batch linger.

A batch closes when it is full (`batch_size`) or `linger_ms` after its first entry,
whichever comes first: small batches under light load (low latency), full batches
under heavy load (throughput).

On a Redis Cluster one XREADGROUP cannot name streams of different hash slots
(CROSSSLOT), and every shard stream has its own slot. There the reader sweeps the
streams with one XREADGROUP each (non-blocking, the same COUNT per stream, pipelined);
when a sweep finds nothing it blocks on one stream, in turn, for at most
`CLUSTER_BLOCK_SLICE_MS`, then sweeps again, until `block_ms` has passed. An event on a
stream nobody is blocked on therefore waits at most one slice. Cancelling a blocked read
instead (one per stream, first answer wins) could lose a reply already sent: those entries
would sit delivered-but-unseen until reclaimed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from redis.exceptions import ResponseError

from dualsync.redisconn import AnyRedis, is_cluster
from dualsync.worker.entry import Entry, parse_entries

__all__ = ["CLUSTER_BLOCK_SLICE_MS", "StreamReader"]

#: longest single blocking read on a cluster (see the module docstring)
CLUSTER_BLOCK_SLICE_MS = 50


def _entries(resp: Any) -> list[Entry]:
    out: list[Entry] = []
    for stream, raw in cast("list[tuple[bytes, Any]]", resp or []):
        entries, _ = parse_entries(stream, raw)
        out.extend(entries)
    return out


class StreamReader:
    """XREADGROUP over every shard stream for one consumer."""

    def __init__(
        self,
        client: AnyRedis,
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
        self._cluster = is_cluster(client)
        self._turn = 0

    async def ensure_groups(self) -> None:
        """Create the group on every stream (MKSTREAM), from the beginning of the stream."""
        for s in self.streams:
            try:
                await self._redis.xgroup_create(s, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _xread(self, streams: list[str], count: int, block: int | None) -> list[Entry]:
        resp = await self._redis.xreadgroup(
            self.group, self.consumer, dict.fromkeys(streams, ">"), count=count, block=block
        )
        return _entries(resp)

    async def _read(self, count: int, block: int | None) -> list[Entry]:
        # COUNT applies per stream: split the room so a batch never exceeds its size.
        per_stream = max(1, -(-count // len(self.streams)))
        if self._cluster:
            return await self._read_cluster(count, per_stream, block)
        return await self._xread(self.streams, per_stream, block)

    async def _sweep(self, per_stream: int) -> list[Entry]:
        """One non-blocking XREADGROUP per stream with the same COUNT each, as the single
        multi-stream read does (a batch then spans every stream, so parents published
        before their children are not left for a later batch), pipelined: the cluster
        pipeline sends each node its streams' reads at once."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for s in self.streams:
                pipe.xreadgroup(self.group, self.consumer, {s: ">"}, count=per_stream)
            replies = await pipe.execute()
        return [e for r in replies for e in _entries(r)]

    async def _read_cluster(self, count: int, per_stream: int, block: int | None) -> list[Entry]:
        """Sweep; when empty, block on one stream at a time in slices (see module doc)."""
        forever = block == 0
        deadline = time.monotonic() + (block or 0) / 1000
        while True:
            out = await self._sweep(per_stream)
            left_ms = int((deadline - time.monotonic()) * 1000)
            if out or block is None or (left_ms <= 0 and not forever):
                return out
            slice_ms = CLUSTER_BLOCK_SLICE_MS if forever else min(CLUSTER_BLOCK_SLICE_MS, left_ms)
            stream = self.streams[self._turn]
            self._turn = (self._turn + 1) % len(self.streams)
            out = await self._xread([stream], count, slice_ms)
            if out:
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
