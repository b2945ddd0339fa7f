"""Stream names and shard routing: the contract every side agrees on.

Publishers (Python, Node, PHP), workers and the ops CLI all name streams through here,
so no consumer imports the producer package for a key name.

shard = crc32(entity + "\\x1f" + key) % shards; the stream key carries the shard as a
Redis Cluster hash tag (`dualsync:events:{3}`) so one shard lives on one node and all
events of one (entity, key) land on one stream, in order.
"""

from __future__ import annotations

import zlib

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = [
    "UNREACHABLE",
    "dlq_index_field",
    "dlq_index_key",
    "dlq_key",
    "dlq_raw_key",
    "readpath_channel",
    "readpath_key",
    "shadow_key",
    "shard_for",
    "stream_key",
    "stream_keys",
    "verify_last_key",
    "verify_lock_key",
    "worker_stats_key",
]

#: errors that mean "Redis is not there right now" (spool, retry, ride out), as opposed to a
#: bad command; shared by publishers and workers
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


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


def dlq_raw_key(prefix: str) -> str:
    """The hash of dead letters' unredacted originals (field: DLQ entry id), for replay."""
    return f"{dlq_key(prefix)}:raw"


def dlq_index_key(prefix: str) -> str:
    """The hash that maps a dead-lettered source entry to its DLQ entry id (field:
    `dlq_index_field`), so a poison redelivered after a crash is not dead-lettered twice."""
    return f"{dlq_key(prefix)}:index"


def dlq_index_field(stream: str, entry_id: str) -> str:
    """The field of a source entry in `dlq_index_key`: `<stream>/<entry id>`."""
    return f"{stream}/{entry_id}"


def verify_lock_key(prefix: str) -> str:
    """The lock that lets one scheduled verify run at a time across all workers."""
    return f"{prefix}:verify:lock"


def verify_last_key(prefix: str) -> str:
    """When the last scheduled verify started (epoch seconds)."""
    return f"{prefix}:verify:last"


def readpath_key(prefix: str) -> str:
    """The read-path modes: a hash of entity -> `legacy` | `shadow` | `postgres` (absent:
    `legacy`). Every language's read-path client reads this key."""
    return f"{prefix}:readpath"


def readpath_channel(prefix: str) -> str:
    """Pub/sub channel of mode changes: JSON `{"entity": ..., "mode": ...}` per change."""
    return f"{prefix}:readpath:changes"


def shadow_key(prefix: str, entity: str) -> str:
    """Shadow-read counters of one entity: a hash with `reads`, `matched`, `mismatched`,
    `errors`, `skipped` and `field:<name>` (mismatches per field name; never values)."""
    return f"{prefix}:shadow:{entity}"


def worker_stats_key(prefix: str) -> str:
    """Counters every worker adds to as it applies: a hash with `<counter>:<entity>` fields
    (`applied`, `stale`, `dead_lettered`), read by `dualsync status`."""
    return f"{prefix}:stats"
