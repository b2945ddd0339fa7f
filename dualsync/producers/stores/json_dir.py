"""`json_dir`: one JSON file per record (donna's `/data/memory/<clerk_id>.json`)."""

from __future__ import annotations

from pathlib import Path

from dualsync.producers.stores._base import FileStore, VersionOf
from dualsync.producers.stores._files import read_json_stable
from dualsync.schema.legacy import LegacyRecord
from dualsync.schema.mapping.errors import MappingError

__all__ = ["JsonDirStore", "safe_key"]


def safe_key(entity: str, key: str) -> str:
    """Refuse keys that would leave the folder (`../x`, `a/b`, hidden names, NUL)."""
    if not key or key.startswith(".") or any(c in key for c in "/\\\x00"):
        raise MappingError(
            f"{entity}: key {key[:64]!r} cannot name a file in its folder",
            entity=entity, key=key[:64], field="$key",
        )  # fmt: skip
    return key


class JsonDirStore(FileStore):
    """Key = file stem; the file's JSON object is the record."""

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
        # "*.json" -> files are "<key>.json": a key names its file without listing the folder
        self._suffix = glob[1:] if glob.startswith("*") and "*" not in glob[1:] else None

    def path_of(self, key: str) -> Path | None:
        """The file of a key, when the glob makes that a pure function of the key."""
        safe_key(self.entity, key)
        return self.directory / f"{key}{self._suffix}" if self._suffix is not None else None

    def paths(self) -> dict[str, Path]:
        if not self.directory.is_dir():
            return {}
        return {p.stem: p for p in self.directory.glob(self.glob) if p.is_file()}

    def _keys(self) -> list[str]:
        return sorted(self.paths())

    def _get(self, key: str) -> LegacyRecord | None:
        path = self.path_of(key)
        if path is None:
            path = self.paths().get(key)
            if path is None:
                return None
        got = read_json_stable(path)
        return None if got is None else self._record(key, got[0])
