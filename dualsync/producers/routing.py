"""Shard routing, identical in every publisher language (Python, Node, PHP).

shard = crc32(entity + "\\x1f" + key) % shards; the stream key carries the shard as a
Redis Cluster hash tag (`dualsync:events:{3}`) so one shard lives on one node and all
events of one (entity, key) land on one stream, in order.
"""

from __future__ import annotations

import zlib

__all__ = ["dlq_key", "shard_for", "stream_key", "stream_keys"]


def shard_for(entity: str, key: str, shards: int) -> int:
    """The shard of an (entity, key)."""
    return zlib.crc32(f"{entity}\x1f{key}".encode()) % shards


def stream_key(prefix: str, shard: int) -> str:
    """The stream of a shard, hash-tagged by shard number."""
    return f"{prefix}:events:{{{shard}}}"


def stream_keys(prefix: str, shards: int) -> list[str]:
    """Every shard stream of a prefix."""
    return [stream_key(prefix, n) for n in range(shards)]


def dlq_key(prefix: str) -> str:
    """The dead-letter stream."""
    return f"{prefix}:dlq"
