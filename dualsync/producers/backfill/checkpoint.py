"""The backfill's checkpoint: a small JSON file, fsynced and renamed atomically per chunk.

It holds the run's version (fixed at the start, so a resumed run re-sends what a crash left
unacknowledged with the *same* versions, and the gate counts the repeats as stale rather
than applying them twice) and, per entity, its key-range segments with the last key done.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["Checkpoint", "EntityProgress", "Segment", "write_durably"]


class Segment(BaseModel):
    """One key range of an entity: (`after`, `last`], `done` once `last` was sent."""

    #: the range starts after this key (None: from the first key)
    start_after: str | None = None
    #: the last key of the range when it was planned (None: to the end)
    last: str | None = None
    #: the last key sent and acknowledged by the sink
    progress: str | None = None
    done: bool = False
    sent: int = 0
    bad: int = 0


class EntityProgress(BaseModel):
    """Segments and totals of one entity."""

    total: int = 0
    segments: list[Segment] = Field(default_factory=list)

    @property
    def done(self) -> bool:
        return bool(self.segments) and all(s.done for s in self.segments)

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.segments)

    @property
    def bad(self) -> int:
        return sum(s.bad for s in self.segments)


class Checkpoint(BaseModel):
    """A whole run."""

    app: str
    mode: str
    #: the version every snapshot event of this run carries (clock-versioned entities)
    version: int
    started_at: str
    entities: dict[str, EntityProgress] = Field(default_factory=dict)

    @property
    def done(self) -> bool:
        return bool(self.entities) and all(e.done for e in self.entities.values())

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        """The checkpoint at `path`, or None when there is none."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None

    def dump(self) -> bytes:
        """The checkpoint as its file holds it (take it where the run mutates it)."""
        return self.model_dump_json(indent=1).encode()

    def save(self, path: Path) -> None:
        """Write durably: temp file, fsync, rename, fsync the folder."""
        write_durably(path, self.dump())

    def summary(self) -> dict[str, Any]:
        """Per entity: total, sent, bad, done."""
        return {
            n: {"total": e.total, "sent": e.sent, "bad": e.bad, "done": e.done}
            for n, e in self.entities.items()
        }


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably: temp file, fsync, rename, fsync
    the folder. Blocking (about 10 ms): the run calls it in a thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(path)
    dirfd = os.open(path.parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder
            os.fsync(dirfd)
    finally:
        os.close(dirfd)
