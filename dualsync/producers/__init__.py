"""Producer side: the publisher SDK (async and sync), routing, versions and the local spool."""

from dualsync.producers.builder import EventBuilder, EventSpec, Published
from dualsync.producers.clock import HybridClock, uuid7
from dualsync.producers.errors import ClockStateError, VersionDomainError
from dualsync.producers.publisher import Publisher
from dualsync.producers.spool import Spool
from dualsync.producers.sync_publisher import SyncPublisher
from dualsync.schema.streams import dlq_key, shard_for, stream_key, stream_keys

__all__ = [
    "ClockStateError",
    "EventBuilder",
    "EventSpec",
    "HybridClock",
    "Published",
    "Publisher",
    "Spool",
    "SyncPublisher",
    "VersionDomainError",
    "dlq_key",
    "shard_for",
    "stream_key",
    "stream_keys",
    "uuid7",
]
