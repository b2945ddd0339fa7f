"""`json_file`: one JSON object holding every record, rewritten whole by the app.

tzurot keeps `personalities.json` (`{name: {...}}`, depth 1) and `auth_tokens.json`
(`{userId: {personality: {...}}}`, depth 2, key `userId:personality`). The file is parsed
once per version (inode, size, mtime) and the parse is shared by every read until the app
rewrites it, so a verifier sampling a 20 MB file does not parse it per key.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dualsync.producers.stores._base import FileStore, VersionOf
from dualsync.producers.stores._files import FileStamp, UnreadableFileError, read_json_stable
from dualsync.schema.legacy import LegacyRecord

__all__ = ["JsonFileStore", "flatten"]


def flatten(data: Any, depth: int, separator: str, key_field: str | None = None) -> dict[str, Any]:
    """Records of a parsed file by key (`a:b` at depth 2, or each record's `key_field`);
    non-object levels, and records without that field, are skipped."""
    if not isinstance(data, dict):
        return {}
    if depth == 1:
        out = {str(k): v for k, v in data.items()}
    else:
        out = {}
        for outer, inner in data.items():
            if isinstance(inner, dict):
                for k, v in inner.items():
                    out[f"{outer}{separator}{k}"] = v
    if key_field is None:
        return out
    return {
        str(v[key_field]): v
        for v in out.values()
        if isinstance(v, dict) and v.get(key_field) is not None
    }


class JsonFileStore(FileStore):
    """Records are the entries of one object (at `depth` 1 or 2)."""

    def __init__(
        self,
        entity: str,
        path: Path,
        *,
        depth: int = 1,
        key_separator: str = ":",
        key_field: str | None = None,
        version_of: VersionOf | None = None,
    ) -> None:
        super().__init__(entity, version_of)
        self.path = path
        self.depth = depth
        self.separator = key_separator
        self.key_field = key_field
        self._lock = threading.Lock()
        self._cache: tuple[FileStamp, dict[str, Any], list[str]] | None = None

    def snapshot(self) -> tuple[dict[str, Any], list[str], FileStamp | None]:
        """Records by key, sorted keys and the stamp they were read at ({} if no file)."""
        with self._lock:
            try:
                stamp = self.path.stat()
            except FileNotFoundError:
                self._cache = None
                return {}, [], None
            cached = self._cache
            if cached is not None and (stamp.st_ino, stamp.st_size, stamp.st_mtime_ns) == (
                cached[0].inode, cached[0].size, cached[0].mtime_ns,
            ):  # fmt: skip
                return cached[1], cached[2], cached[0]
            got = read_json_stable(self.path)
            if got is None:
                self._cache = None
                return {}, [], None
            records = flatten(got[0], self.depth, self.separator, self.key_field)
            self._cache = (got[1], records, sorted(records))
            return records, self._cache[2], got[1]

    def _keys(self) -> list[str]:
        try:
            return self.snapshot()[1]
        except UnreadableFileError as exc:
            self._report(exc)
            return []

    def _get(self, key: str) -> LegacyRecord | None:
        records = self.snapshot()[0]
        return self._record(key, records[key]) if key in records else None
