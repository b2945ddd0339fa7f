"""`json_lines`: append-only files of one JSON object per line (donna's `api/logs/*.log`).

Key `<file>:<line>`: the file's path below the glob's fixed folder (`api/logs/*.log` ->
`donna-2025-01-31.log:17`, as the PHP app names its lines) and the 1-based line number.
A last line without its newline is still being written and is not a record yet; a
complete line that does not parse is reported with its key and skipped.
"""

from __future__ import annotations

import asyncio
import bisect
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dualsync.logging import get_logger
from dualsync.producers.stores._base import FileStore, VersionOf
from dualsync.producers.stores._order import sample
from dualsync.schema.jsonexact import JSONTextError, loads_exact
from dualsync.schema.legacy import LegacyRecord

__all__ = ["JsonLinesStore", "glob_base", "parse_lines", "split_key"]

log = get_logger(__name__)


def glob_base(glob: str) -> tuple[str, str]:
    """(fixed leading folders, the rest) of a glob: `api/logs/*.log` -> (`api/logs`, `*.log`)."""
    parts = Path(glob).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if any(ch in part for ch in "*?["):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else ".", str(Path(*parts[len(fixed) :]))


def split_key(key: str) -> tuple[str, int] | None:
    """(`file`, `line`) of a key, or None when it is not of that shape."""
    name, sep, line = key.rpartition(":")
    if not sep or not name or not line.isdigit() or line.startswith("0"):
        return None
    return name, int(line)


def parse_lines(data: bytes) -> tuple[list[Any], int, list[int]]:
    """Values of the complete lines (None for unparsable ones), bytes consumed, bad lines."""
    end = data.rfind(b"\n") + 1
    values: list[Any] = []
    bad: list[int] = []
    for n, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
        try:
            values.append(loads_exact(line) if line.strip() else None)
        except JSONTextError:
            values.append(None)
            bad.append(n)
    return values, end, bad


class JsonLinesStore(FileStore):
    """Records are the lines of every file matching `glob` under the legacy `root`."""

    def __init__(
        self, entity: str, root: Path, glob: str, version_of: VersionOf | None = None
    ) -> None:
        super().__init__(entity, version_of)
        base, rest = glob_base(glob)
        #: the folder keys are relative to, and the pattern below it
        self.root = root / base
        self.glob = rest
        self._lock = threading.Lock()
        self._files: dict[str, tuple[int, int, list[Any]]] = {}

    def files(self) -> list[str]:
        """Matching files, relative to the root, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root)) for p in self.root.glob(self.glob) if p.is_file()
        )

    def lines_of(self, name: str) -> list[Any]:
        """Parsed complete lines of one file (re-read only when it grew or changed)."""
        path = self.root / name
        with self._lock:
            try:
                st = path.stat()
            except FileNotFoundError:
                self._files.pop(name, None)
                return []
            hit = self._files.get(name)
            if hit is not None and hit[:2] == (st.st_size, st.st_mtime_ns):
                return hit[2]
            values, _, bad = parse_lines(path.read_bytes())
            for n in bad:
                log.warning("legacy_line_skipped", entity=self.entity, key=f"{name}:{n}",
                            why="not valid JSON")  # fmt: skip
            self._files[name] = (st.st_size, st.st_mtime_ns, values)
            return values

    def _ordered(self) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for name in self.files():
            out.extend(
                (name, n) for n, v in enumerate(self.lines_of(name), start=1) if v is not None
            )
        return out

    def _keys(self) -> list[str]:
        return [f"{f}:{n}" for f, n in self._ordered()]

    async def iter_keys(
        self, after: str | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[str]]:
        """Keys in (file, line number) order: `a.log:10` comes after `a.log:9`."""
        ordered = await asyncio.to_thread(self._ordered)
        start = 0
        if after is not None:
            pos = split_key(after)
            start = bisect.bisect_right(ordered, pos) if pos is not None else 0
        for i in range(start, len(ordered), max(chunk, 1)):
            yield [f"{f}:{n}" for f, n in ordered[i : i + chunk]]

    async def sample_keys(self, n: int, seed: int) -> list[str]:
        """Up to `n` distinct line keys, seeded."""
        return sample(await asyncio.to_thread(self._keys), n, seed)

    def sort_key(self, key: str) -> Any:
        """(file, line number): `a.log:10` after `a.log:9`."""
        return split_key(key) or (key, 0)

    def _get(self, key: str) -> LegacyRecord | None:
        pos = split_key(key)
        if pos is None or ".." in Path(pos[0]).parts or Path(pos[0]).is_absolute():
            return None
        lines = self.lines_of(pos[0])
        if pos[1] > len(lines) or lines[pos[1] - 1] is None:
            return None
        return self._record(key, lines[pos[1] - 1])
