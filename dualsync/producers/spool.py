"""A local, fsynced spool for events that could not reach Redis.

The application's write must never fail because Redis is down, and nothing may be
lost: entries are appended as JSON lines to a file owned (flock) by one publisher,
fsynced before `append` returns, and drained in order when Redis answers again. The
drain position is committed (fsync + atomic rename) after each chunk reaches Redis.

A crash between a chunk's XADD and its position commit re-sends that chunk on the
next drain: delivery from the spool is at-least-once, and the apply path's version
gate makes a duplicate a no-op. Spool files left by a dead process (no flock held)
are adopted and drained by the next publisher that starts on the same directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from dualsync.producers.clock import uuid7

__all__ = ["Spool", "SpoolEntry"]


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One spooled event and the byte offset just after it."""

    stream: str
    fields: dict[str, str]
    end: int


class _SpoolFile:
    """One flock-owned append-only file plus its committed read position."""

    def __init__(self, path: Path, fh: IO[bytes]) -> None:
        self.path = path
        self.fh = fh
        self.pos_path = path.with_suffix(".pos")
        self.pos = int(self.pos_path.read_text()) if self.pos_path.exists() else 0

    def size(self) -> int:
        return os.fstat(self.fh.fileno()).st_size

    def commit(self, pos: int) -> None:
        tmp = self.pos_path.with_suffix(".pos.tmp")
        with tmp.open("w") as f:
            f.write(str(pos))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.pos_path)
        self.pos = pos

    def remove(self) -> None:
        for p in (self.path, self.pos_path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self.fh.close()


def _lock(path: Path) -> IO[bytes] | None:
    fh = path.open("ab+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


class Spool:
    """The spool directory of one publisher: its own file plus adopted orphans."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._own: _SpoolFile | None = None
        self._files: list[_SpoolFile] = []

    def _own_file(self) -> _SpoolFile:
        if self._own is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"spool-{os.getpid()}-{uuid7()}.jsonl"
            fh = _lock(path)
            if fh is None:  # pragma: no cover - a fresh uuid7 name cannot be locked by others
                raise OSError(f"cannot lock new spool file {path}")
            self._own = _SpoolFile(path, fh)
            self._files.append(self._own)
        return self._own

    def adopt_orphans(self) -> int:
        """Take over spool files whose owner died; return how many were adopted."""
        if not self.directory.is_dir():
            return 0
        known = {f.path for f in self._files}
        adopted = 0
        for path in sorted(self.directory.glob("spool-*.jsonl")):
            if path in known:
                continue
            fh = _lock(path)
            if fh is not None:
                self._files.insert(len(self._files) - (self._own is not None), _SpoolFile(path, fh))
                adopted += 1
        return adopted

    def append(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Append entries durably (fsync) before returning."""
        f = self._own_file()
        data = b"".join(orjson.dumps([s, fl]) + b"\n" for s, fl in entries)
        f.fh.seek(0, os.SEEK_END)
        f.fh.write(data)
        f.fh.flush()
        os.fsync(f.fh.fileno())

    def pending(self) -> bool:
        """True while any spooled entry has not been committed as drained."""
        return any(f.pos < f.size() for f in self._files)

    def count(self) -> int:
        """Entries not yet drained (reads the files: for status, not the hot path)."""
        return sum(1 for _ in self._iter_all())

    def _iter_all(self) -> Iterator[SpoolEntry]:
        for f in self._files:
            yield from self._read(f, 1 << 62)

    def _read(self, f: _SpoolFile, limit: int) -> Iterator[SpoolEntry]:
        f.fh.seek(f.pos)
        pos, n = f.pos, 0
        while n < limit:
            line = f.fh.readline()
            if not line.endswith(b"\n"):
                return  # end of file, or a torn last write whose append never returned
            pos += len(line)
            stream, fields = orjson.loads(line)
            yield SpoolEntry(stream, fields, pos)
            n += 1

    def next_chunk(self, limit: int) -> tuple[_SpoolFile, list[SpoolEntry]] | None:
        """The oldest undrained entries of the first file that has any."""
        for f in self._files:
            chunk = list(self._read(f, limit))
            if chunk:
                return f, chunk
        return None

    def commit(self, f: _SpoolFile, pos: int) -> None:
        """Record that everything before `pos` in `f` reached Redis; tidy drained files."""
        f.commit(pos)
        if pos >= f.size():
            if f is self._own:
                self._own = None
            self._files.remove(f)
            f.remove()

    def close(self) -> None:
        """Release the file locks (undrained files stay for the next publisher)."""
        for f in self._files:
            f.fh.close()
        self._files.clear()
        self._own = None
