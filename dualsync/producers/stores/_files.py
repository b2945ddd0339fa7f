"""Reading JSON files that the legacy app may be rewriting at the same moment.

Legacy apps rewrite files in place (PHP `file_put_contents`, Node `fs.writeFile`): a reader
can see a truncated file, half of the new bytes, or a file replaced between `stat` and
`read`. A read counts only when the file's identity, size and mtime are the same before and
after it, the bytes read match that size, and they parse; otherwise it is tried again a few
times. A file that stays unparsable is reported (path and reason, never its content) with
`UnreadableFileError`, and the caller skips it: nothing half-written is ever published.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualsync.errors import RetryableError
from dualsync.schema.jsonexact import JSONTextError, loads_exact

__all__ = ["FileStamp", "UnreadableFileError", "read_json_stable", "stamp_of"]

ATTEMPTS = 6
PAUSE_S = 0.02


class UnreadableFileError(RetryableError):
    """A legacy file kept changing while read, or is not valid JSON; it was skipped."""

    reason = "legacy_file_unreadable"

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}; skipped (it is read again on the next pass)")
        self.path = path
        self.why = why


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What identifies one version of a file without reading it."""

    inode: int
    size: int
    mtime_ns: int


def stamp_of(st: os.stat_result) -> FileStamp:
    """The stamp of a `stat` result."""
    return FileStamp(st.st_ino, st.st_size, st.st_mtime_ns)


def read_json_stable(path: Path, *, attempts: int = ATTEMPTS) -> tuple[Any, FileStamp] | None:
    """The parsed content of `path` and the stamp it was read at; None if the file is gone.

    Raises `UnreadableFileError` when no attempt saw a stable, parsable file.
    """
    why = "unknown"
    for attempt in range(attempts):
        if attempt:
            time.sleep(PAUSE_S * attempt)
        try:
            before = stamp_of(path.stat())
            data = path.read_bytes()
            after = stamp_of(path.stat())
        except FileNotFoundError:
            return None
        except OSError as exc:
            why = f"cannot read ({exc.strerror or type(exc).__name__})"
            continue
        if before != after or len(data) != after.size:
            why = "changed while being read"
            continue
        try:
            return loads_exact(data), after
        except JSONTextError as exc:
            why = f"not valid JSON ({exc})" if data else "empty"
    raise UnreadableFileError(path, why)
