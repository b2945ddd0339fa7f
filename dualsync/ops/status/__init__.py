"""`dualsync status`: one screen of shards, consumers, per-entity counts, verify and modes."""

from dualsync.ops.status.collect import collect
from dualsync.ops.status.model import (
    ConsumerInfo,
    EntityStatus,
    ShardStatus,
    StatusSnapshot,
    VerifyInfo,
)
from dualsync.ops.status.render import render

__all__ = [
    "ConsumerInfo",
    "EntityStatus",
    "ShardStatus",
    "StatusSnapshot",
    "VerifyInfo",
    "collect",
    "render",
]
