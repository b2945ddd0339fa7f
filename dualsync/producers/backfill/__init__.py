"""Live backfill: snapshot a legacy store as upsert events through the version gate."""

from dualsync.producers.backfill.checkpoint import Checkpoint, EntityProgress, Segment
from dualsync.producers.backfill.progress import Progress
from dualsync.producers.backfill.run import Backfill, BackfillOptions, split_segments
from dualsync.producers.backfill.sink import (
    BadDoc,
    Prepared,
    SendResult,
    Sink,
    StagedSink,
    StreamSink,
    group_lag,
)

__all__ = [
    "Backfill",
    "BackfillOptions",
    "BadDoc",
    "Checkpoint",
    "EntityProgress",
    "Prepared",
    "Progress",
    "Segment",
    "SendResult",
    "Sink",
    "StagedSink",
    "StreamSink",
    "group_lag",
    "split_segments",
]
