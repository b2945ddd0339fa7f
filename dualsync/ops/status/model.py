"""The typed snapshot `dualsync status` shows: per shard, per entity, as of one moment."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ConsumerInfo", "EntityStatus", "ShardStatus", "StatusSnapshot", "VerifyInfo"]


@dataclass(frozen=True, slots=True)
class ConsumerInfo:
    """One consumer of the group on one shard stream (XINFO CONSUMERS)."""

    name: str
    pending: int
    idle_s: float


@dataclass(frozen=True, slots=True)
class ShardStatus:
    """One shard stream."""

    shard: int
    stream: str
    #: entries in the stream (acknowledged ones too, until trimmed)
    length: int
    #: entries the group has not acknowledged: pending plus not yet delivered
    lag: int
    pending: int
    #: age of the oldest pending entry (from its id), None when nothing is pending
    oldest_pending_s: float | None
    consumers: list[ConsumerInfo] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class VerifyInfo:
    """The latest finished verify run of an entity."""

    run_id: int
    started_at: str
    sampled: int
    drift: int
    #: 95% upper bound of the drift rate
    bound: float | None


@dataclass(frozen=True, slots=True)
class EntityStatus:
    """One entity: what workers counted (all of them, from Redis), its DLQ, verify, mode."""

    entity: str
    mode: str
    applied: int = 0
    deleted: int = 0
    stale: int = 0
    #: dead letters the workers counted writing them
    dead_lettered: int = 0
    #: dead letters in the DLQ stream now (replayed or purged ones are gone)
    dlq: int = 0
    verify: VerifyInfo | None = None


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """Everything on the status screen."""

    at: str
    prefix: str
    group: str
    #: total unacknowledged entries, as readiness counts them (`group_lag`)
    lag: int
    shards: list[ShardStatus]
    entities: list[EntityStatus]
    #: why verify results are missing ("" when they were read)
    postgres_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as one JSON-ready document."""
        return asdict(self)
