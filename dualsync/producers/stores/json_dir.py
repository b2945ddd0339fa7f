"""`json_dir`: one JSON file per record (donna's `/data/memory/<clerk_id>.json`).

The key is what the glob's wildcards match, joined with `/`: `*.json` gives the file stem
(`user_2abc`), `*/sites/*.json` gives `<destination>/<site>` (dovvy's dive sites). The
mapping is two-way, so a key names its file without listing the folder; a key whose parts
would leave the folder (`..`, hidden names, separators inside a part) is refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dualsync.producers.stores._base import FileStore, VersionOf
from dualsync.producers.stores._files import read_json_stable
from dualsync.schema.legacy import LegacyRecord
from dualsync.schema.mapping.errors import MappingError

__all__ = ["JsonDirStore", "KeyLayout", "safe_key"]


#: a character no key part may hold (a part names one file inside its folder)
_UNSAFE = re.compile("[/\\\\\x00]")


def safe_key(entity: str, key: str, parts: int = 1) -> list[str]:
    """The `parts` path parts of a key; refuse keys that would leave the folder."""
    pieces = key.split("/") if parts > 1 else [key]
    if len(pieces) != parts or any(
        not p or p.startswith(".") or _UNSAFE.search(p) is not None for p in pieces
    ):
        raise MappingError(
            f"{entity}: key {key[:64]!r} cannot name a file in its folder"
            + (f" (it needs {parts} parts joined by '/')" if parts > 1 else ""),
            entity=entity, key=key[:64], field="$key",
        )  # fmt: skip
    return pieces


def _literal(segment: str) -> bool:
    return not any(c in segment for c in "*?[")


class KeyLayout:
    """How keys and file paths map onto each other for one glob.

    Supported: segments that are literal, `*`, or `*<suffix>` (e.g. `*.json`); anything
    else (`?`, `[...]`, `a*b`) falls back to listing the folder, with the stem as the key.
    """

    def __init__(self, glob: str) -> None:
        self.glob = glob
        self.segments = glob.split("/")
        self.wild = [i for i, s in enumerate(self.segments) if s.startswith("*")]
        simple = all(
            not any(c in s for c in "*?[")
            or (s.startswith("*") and not any(c in s[1:] for c in "*?["))
            for s in self.segments
        )
        self.two_way = simple and bool(self.wild)
        #: one wildcard segment and nothing else (`*.json`): the file's suffix after `*`
        self.flat_suffix = (
            self.segments[0][1:] if self.two_way and len(self.segments) == 1 else None
        )

    def key_of(self, rel: Path) -> str | None:
        """The key of a file (relative to the folder), or None if the glob does not fit."""
        parts = rel.parts
        if not self.two_way:
            return rel.stem
        if len(parts) != len(self.segments):
            return None
        out = []
        for seg, part in zip(self.segments, parts, strict=True):
            if seg.startswith("*"):
                suffix = seg[1:]
                if not part.endswith(suffix) or len(part) == len(suffix):
                    return None
                out.append(part[: len(part) - len(suffix)] if suffix else part)
            elif seg != part:
                return None
        return "/".join(out)

    def path_of(self, entity: str, key: str) -> Path | None:
        """The file of a key (relative), or None when the glob cannot say."""
        if not self.two_way:
            safe_key(entity, key)
            return None
        pieces = iter(safe_key(entity, key, len(self.wild)))
        return Path(*(next(pieces) + s[1:] if s.startswith("*") else s for s in self.segments))


class JsonDirStore(FileStore):
    """One record per file; the file's JSON value is the record."""

    def __init__(
        self,
        entity: str,
        directory: Path,
        glob: str = "*.json",
        version_of: VersionOf | None = None,
    ) -> None:
        super().__init__(entity, version_of)
        self.directory = directory
        self.glob = glob
        self.layout = KeyLayout(glob)

    def path_of(self, key: str) -> Path | None:
        """The file of a key, when the glob makes that a pure function of the key."""
        rel = self.layout.path_of(self.entity, key)
        return None if rel is None else self.directory / rel

    def _flat_names(self, suffix: str) -> dict[str, str]:
        """For a one-segment glob (`*.json`): file name by key, from one `scandir` (what
        `Path.glob` returns, without a `Path` and a `stat` per file: an entry's type comes
        with the listing; symbolic links are followed, as `is_file` does)."""
        out: dict[str, str] = {}
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    name = entry.name
                    if len(name) > len(suffix) and name.endswith(suffix) and entry.is_file():
                        out[name[: len(name) - len(suffix)] if suffix else name] = name
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return {}  # as `Path.glob`: an unreadable or missing folder lists nothing
        return out

    def paths(self) -> dict[str, Path]:
        """Every record's file, by key."""
        suffix = self.layout.flat_suffix
        if suffix is not None:
            return {k: self.directory / n for k, n in self._flat_names(suffix).items()}
        if not self.directory.is_dir():
            return {}
        out: dict[str, Path] = {}
        for p in self.directory.glob(self.glob):
            key = self.layout.key_of(p.relative_to(self.directory))
            if key is not None and p.is_file():
                out[key] = p
        return out

    def _keys(self) -> list[str]:
        suffix = self.layout.flat_suffix
        return sorted(self._flat_names(suffix) if suffix is not None else self.paths())

    def _get(self, key: str) -> LegacyRecord | None:
        path = self.path_of(key)
        if path is None:
            path = self.paths().get(key)
            if path is None:
                return None
        got = read_json_stable(path)
        return None if got is None else self._record(key, got[0])
