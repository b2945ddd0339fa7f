"""The backfill's checkpoint: a small JSON file, fsynced and renamed atomically per chunk.

It holds the run's version (fixed at the start, so a resumed run re-sends what a crash left
unacknowledged with the *same* versions, and the gate counts the repeats as stale rather
than applying them twice) and, per entity, its key-range segments with the last key done.

A run of several processes (`--direct --processes N`, processes.py) keeps one file per
process beside it, `<stem>.part<i><suffix>`, each a checkpoint of the same run holding only
that process's segments (only that process writes it); the main file then holds the plan:
`processes`, and per entity its total and the parts that hold its segments. `load_run` reads
the main file with every part's progress merged in: what a resume, a report or a poll wants.
Checkpoints written before `processes` existed read as one-process runs.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from dualsync.errors import ConfigError

__all__ = ["Checkpoint", "EntityProgress", "Segment", "part_path", "write_durably"]


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
    #: in a run of several processes (main file only): the parts holding its segments
    parts: list[int] = Field(default_factory=list)

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
    #: processes the run was planned for (1: this file holds every segment)
    processes: int = 1
    #: in a part file: the index of the process that owns it
    part: int | None = None

    @property
    def done(self) -> bool:
        return bool(self.entities) and all(e.done for e in self.entities.values())

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        """The checkpoint at `path` as written, or None when there is none; a file this
        version cannot read raises `ConfigError` (name and first problem, no content)."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the file"
            raise ConfigError(
                f"{path} is not a backfill checkpoint this version can read "
                f"({where}: {first['msg']}): start over with --restart"
            ) from None

    @classmethod
    def load_run(cls, path: Path) -> Checkpoint | None:
        """The run at `path` with the progress of every process merged in (a one-process
        checkpoint as it is). A part that is missing, or of another run, raises
        `ConfigError`: its ranges' progress is unknown, so the run cannot be resumed."""
        cp = cls.load(path)
        if cp is None or cp.processes <= 1 or cp.part is not None:
            return cp
        parts: dict[int, Checkpoint | None] = {}
        merged: dict[str, EntityProgress] = {}
        for name, ep in cp.entities.items():
            segments: list[Segment] = []
            for i in ep.parts:
                if i not in parts:
                    parts[i] = cls.load(part_path(path, i))
                part = parts[i]
                got = part.entities.get(name) if part and part.version == cp.version else None
                if got is None:
                    raise ConfigError(
                        f"{part_path(path, i)} is missing or belongs to another run, so the "
                        f"progress of {name} is unknown: start over with --restart"
                    )
                segments += got.segments
            merged[name] = EntityProgress(total=ep.total, segments=segments, parts=ep.parts)
        return cp.model_copy(update={"entities": merged})

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


def part_path(path: Path, index: int) -> Path:
    """The checkpoint file of process `index` of a run whose main file is `path`."""
    return path.with_name(f"{path.stem}.part{index}{path.suffix}")


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
