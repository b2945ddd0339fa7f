"""A local, fsynced spool for events that could not reach Redis.

The application's write must never fail because Redis is down, and nothing may be
lost: entries are appended as JSON lines to a file owned (flock) by one publisher,
fsynced before `append` returns, and drained in order when Redis answers again. A new
spool file's directory entry is fsynced before its first `append` returns (else a power
cut can drop the file, and every event in it). The drain position is committed (fsync,
atomic rename, directory fsync) after each chunk reaches Redis.

A crash between a chunk's XADD and its position commit re-sends that chunk on the
next drain: delivery from the spool is at-least-once, and the apply path's version
gate makes a duplicate a no-op. Spool files left by a dead process (no flock held)
are adopted and drained by the next publisher that starts on the same directory.

Only complete lines are events. A torn tail (a crash mid-append: that append never
returned) is ignored, and a file drained up to it is removed like any drained file, so
it cannot make every later publisher start in spooling mode. A failed append is cut
back off the publisher's own file at once. A corrupt line (unparsable, or not
`[stream, {field: value}]`) is moved to `<file>.bad` and logged with file and offset,
never its content; the drain continues behind it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from dualsync.logging import get_logger
from dualsync.producers.clock import uuid7
from dualsync.producers.durable import fsync_dir, make_dir, write_atomic

__all__ = ["Spool", "SpoolEntry", "SpoolFile"]

log = get_logger(__name__)

_TAIL_BLOCK = 1 << 16


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """One spooled event and the byte offset just after it."""

    stream: str
    fields: dict[str, str]
    end: int


def _parse(line: bytes) -> tuple[str, dict[str, str]] | None:
    try:
        value: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(value) is not list or len(value) != 2:  # noqa: PLR2004 - [stream, fields]
        return None
    stream, fields = value
    if type(stream) is not str or type(fields) is not dict:
        return None
    if not all(type(k) is str and type(v) is str for k, v in fields.items()):
        return None
    return stream, fields


def _read_pos(path: Path) -> int:
    try:
        return int(path.read_text())
    except FileNotFoundError:
        return 0
    except ValueError:  # written by atomic rename, so only an outside hand gets here
        log.warning("spool_position_unreadable", file=path.name, resend_from=0)
        return 0


def _complete_end(fh: IO[bytes]) -> int:
    """The offset just after the last newline: where the complete lines end."""
    pos = os.fstat(fh.fileno()).st_size
    while pos > 0:
        start = max(0, pos - _TAIL_BLOCK)
        fh.seek(start)
        i = fh.read(pos - start).rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


class SpoolFile:
    """One flock-owned append-only file plus its committed read position."""

    def __init__(self, path: Path, fh: IO[bytes], *, new: bool) -> None:
        self.path = path
        self.fh = fh
        self.pos_path = path.with_suffix(".pos")
        self.bad_path = path.with_suffix(".bad")
        self.pos = 0 if new else _read_pos(self.pos_path)
        #: the offset after the last complete line; a torn tail lies beyond it
        self.end = 0 if new else _complete_end(fh)

    def size(self) -> int:
        return os.fstat(self.fh.fileno()).st_size

    def append(self, data: bytes) -> None:
        fd = self.fh.fileno()
        if self.size() != self.end:  # an earlier failed append could not be cut back
            os.ftruncate(fd, self.end)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, self.end)  # the append did not happen: no torn tail
            raise
        self.end += len(data)

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """(offset, line) of every complete line after the committed position."""
        self.fh.seek(self.pos)
        offset = self.pos
        while offset < self.end:
            line = self.fh.readline()
            yield offset, line
            offset += len(line)

    def commit(self, pos: int) -> None:
        write_atomic(self.pos_path, str(pos).encode())
        self.pos = pos

    def quarantine(self, offset: int, line: bytes) -> None:
        new = not self.bad_path.exists()
        with self.bad_path.open("ab") as bad:
            bad.write(line)
            bad.flush()
            os.fsync(bad.fileno())
        if new:
            fsync_dir(self.path.parent)
        log.error(
            "spool_line_corrupt",
            file=self.path.name,
            offset=offset,
            bytes=len(line),
            moved_to=self.bad_path.name,
        )
        self.commit(offset + len(line))

    def remove(self) -> None:
        size = self.size()
        if size > self.end:
            log.warning(
                "spool_torn_tail_dropped",
                file=self.path.name,
                offset=self.end,
                bytes=size - self.end,
            )
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        fsync_dir(self.path.parent)  # the data file is gone for good before its position
        for p in (self.pos_path, self.pos_path.with_name(self.pos_path.name + ".tmp")):
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
    if os.fstat(fh.fileno()).st_nlink == 0:  # drained and removed by its owner meanwhile
        fh.close()
        return None
    return fh


class Spool:
    """The spool directory of one publisher: its own file plus adopted orphans.

    Thread-safe: a drain cancelled while its commit runs in a worker thread cannot
    interleave with the next read or with `close()`.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._own: SpoolFile | None = None
        self._files: list[SpoolFile] = []
        self._mutex = threading.Lock()

    def _own_file(self) -> SpoolFile:
        if self._own is None:
            make_dir(self.directory)
            path = self.directory / f"spool-{os.getpid()}-{uuid7()}.jsonl"
            fh = _lock(path)
            if fh is None:  # pragma: no cover - a fresh uuid7 name cannot be locked by others
                raise OSError(f"cannot lock new spool file {path}")
            fsync_dir(self.directory)  # the new name survives a power cut
            self._own = SpoolFile(path, fh, new=True)
            self._files.append(self._own)
        return self._own

    def adopt_orphans(self) -> int:
        """Take over spool files whose owner died; return how many have entries to drain."""
        if not self.directory.is_dir():
            return 0
        with self._mutex:
            known = {f.path for f in self._files}
            adopted = 0
            for path in sorted(self.directory.glob("spool-*.jsonl")):
                if path in known:
                    continue
                fh = _lock(path)
                if fh is None:
                    continue
                f = SpoolFile(path, fh, new=False)
                if f.pos >= f.end:  # drained (its removal was lost) or only a torn tail
                    f.remove()
                    continue
                self._files.insert(len(self._files) - (self._own is not None), f)
                adopted += 1
            return adopted

    def append(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        """Append entries durably (fsync) before returning; on error nothing is appended."""
        data = b"".join(orjson.dumps([s, fl]) + b"\n" for s, fl in entries)
        with self._mutex:
            self._own_file().append(data)

    def pending(self) -> bool:
        """True while any spooled entry has not been committed as drained."""
        with self._mutex:
            return any(f.pos < f.end for f in self._files)

    def count(self) -> int:
        """Entries not yet drained (reads the files: for status, not the hot path)."""
        with self._mutex:
            return sum(1 for f in self._files for _, line in f.lines() if _parse(line) is not None)

    def next_chunk(self, limit: int) -> tuple[SpoolFile, list[SpoolEntry]] | None:
        """The oldest undrained entries of the first file that has any.

        Corrupt lines met first are moved aside; adopted files with nothing left to send
        (a torn tail at most) are removed.
        """
        with self._mutex:
            for f in list(self._files):
                chunk = self._chunk(f, limit)
                if chunk:
                    return f, chunk
                if f is not self._own:
                    self._files.remove(f)
                    f.remove()
            return None

    @staticmethod
    def _chunk(f: SpoolFile, limit: int) -> list[SpoolEntry]:
        while True:
            chunk: list[SpoolEntry] = []
            corrupt: tuple[int, bytes] | None = None
            for offset, line in f.lines():
                parsed = _parse(line)
                if parsed is None:
                    corrupt = (offset, line)
                    break
                chunk.append(SpoolEntry(parsed[0], parsed[1], offset + len(line)))
                if len(chunk) >= limit:
                    break
            if chunk or corrupt is None:
                return chunk  # a corrupt line after the chunk waits for the next call
            f.quarantine(*corrupt)

    def commit(self, f: SpoolFile, pos: int) -> None:
        """Record that everything before `pos` in `f` reached Redis; tidy drained files."""
        with self._mutex:
            f.commit(pos)
            if pos >= f.end and f in self._files:
                if f is self._own:
                    self._own = None
                self._files.remove(f)
                f.remove()

    def close(self) -> None:
        """Release the file locks (undrained files stay for the next publisher)."""
        with self._mutex:
            for f in self._files:
                f.fh.close()
            self._files.clear()
            self._own = None
