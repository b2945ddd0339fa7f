"""Crash-safe small writes for the spool and the clock: data first, then the directory entry.

`fsync(file)` makes a file's bytes durable, not its name: after a power cut a file created
or renamed into place (and everything in it) can vanish unless its directory is fsynced
too. Every create, rename and unlink the spool or the clock relies on goes through here.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir", "make_dir", "write_atomic"]


def fsync_dir(directory: Path) -> None:
    """Make the entries of `directory` (creates, renames, unlinks) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(directory: Path) -> None:
    """`mkdir -p`, with the new directory's own entry made durable in its parent."""
    if directory.is_dir():
        return
    make_dir(directory.parent)
    directory.mkdir(exist_ok=True)
    fsync_dir(directory.parent)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: written and fsynced aside, renamed, directory fsynced."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fsync_dir(path.parent)
