"""What the scanner remembers between passes, in Redis: it survives restarts and is shared
by whichever host runs the scan next.

Per entity, two hashes:
- `<prefix>:scan:<entity>:records`: key -> "<content hash> <last published version>";
- `<prefix>:scan:<entity>:files`: file -> its stamp when last read ("ino:size:mtime_ns"),
  or for JSON lines "ino:offset:lines" (bytes consumed and lines numbered so far).

State is written after the events it describes are published, so a crash in between
re-publishes them on the next pass (at-least-once; the version gate drops the repeats).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from dualsync.redisconn import AnyRedis

__all__ = ["ScanState", "Seen", "scan_keys"]


def scan_keys(prefix: str, entity: str) -> tuple[str, str]:
    """The records hash and the files hash of one entity."""
    return f"{prefix}:scan:{entity}:records", f"{prefix}:scan:{entity}:files"


@dataclass(frozen=True, slots=True)
class Seen:
    """A record as last published: its content hash and version (0 when clock-versioned)."""

    digest: str
    version: int

    def encode(self) -> str:
        return f"{self.digest} {self.version}"

    @classmethod
    def decode(cls, raw: bytes | str) -> Seen:
        text = raw.decode() if isinstance(raw, bytes) else raw
        digest, _, version = text.partition(" ")
        return cls(digest, int(version or 0))


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


class ScanState:
    """The Redis-held state of one entity's scan."""

    def __init__(self, client: AnyRedis, prefix: str, entity: str) -> None:
        self._r = client
        self.records_key, self.files_key = scan_keys(prefix, entity)

    async def records(self) -> dict[str, Seen]:
        """Every record published so far."""
        raw = await self._r.hgetall(self.records_key)  # type: ignore[misc]  # redis stubs: Awaitable|dict
        return {_s(k): Seen.decode(v) for k, v in raw.items()}

    async def files(self) -> dict[str, str]:
        """Every file's stamp when it was last read."""
        raw = await self._r.hgetall(self.files_key)  # type: ignore[misc]  # redis stubs: Awaitable|dict
        return {_s(k): _s(v) for k, v in raw.items()}

    async def save(
        self,
        *,
        records: Mapping[str, Seen] | None = None,
        gone: Iterable[str] = (),
        files: Mapping[str, str] | None = None,
        files_gone: Iterable[str] = (),
    ) -> None:
        """Record what was just published, in one round trip."""
        gone, files_gone = list(gone), list(files_gone)
        async with self._r.pipeline(transaction=True) as pipe:
            if records:
                pipe.hset(self.records_key, mapping={k: v.encode() for k, v in records.items()})
            if gone:
                pipe.hdel(self.records_key, *gone)
            if files:
                pipe.hset(self.files_key, mapping=dict(files))
            if files_gone:
                pipe.hdel(self.files_key, *files_gone)
            await pipe.execute()

    async def reset(self) -> None:
        """Forget everything (the next pass publishes every record again)."""
        await self._r.delete(self.records_key, self.files_key)
