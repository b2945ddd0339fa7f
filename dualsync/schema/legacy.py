"""The legacy-store interfaces: `LegacyReader` (the worker's re-read of a reference event)
and `LegacyStore` (one entity's records, for backfill, scanning and verifying).

Adapters (MongoDB via motor, a JSON directory, one JSON file, JSON lines) live in
`dualsync.producers.stores`; the worker and the verifier only see these Protocols.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["InMemoryLegacyStore", "LegacyReader", "LegacyRecord", "LegacyStore"]


@dataclass(frozen=True, slots=True)
class LegacyRecord:
    """One authoritative record as the legacy store holds it now."""

    key: str
    doc: dict[str, Any]
    #: the store's own version when it has one (counter, updatedAt in µs)
    version: int | None = None


@runtime_checkable
class LegacyReader(Protocol):
    """Reads current records from the authoritative legacy store."""

    async def read(self, entity: str, key: str) -> LegacyRecord | None:
        """The record now, or None when it no longer exists."""
        ...


@runtime_checkable
class LegacyStore(LegacyReader, Protocol):
    """The records of one entity in the authoritative store.

    Keys are the strings the app publishes. "Key order" is the store's own order (file
    names, `_id`, file then line number); `after` means strictly after that key in it, so a
    checkpoint of the last key seen resumes exactly.
    """

    entity: str

    async def get(self, key: str) -> LegacyRecord | None:
        """The record now, or None when it does not exist."""
        ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, LegacyRecord]:
        """The records that exist among `keys`, by key."""
        ...

    def iter_keys(self, after: str | None = None, chunk: int = 1000) -> AsyncIterator[list[str]]:
        """Every key in key order, `chunk` at a time, starting after `after`."""
        ...

    def iter_records(
        self, after: str | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[LegacyRecord]]:
        """Every record in key order, `chunk` at a time, starting after `after`."""
        ...

    async def sample_keys(self, n: int, seed: int) -> list[str]:
        """Up to `n` distinct keys drawn uniformly; the same seed gives the same keys."""
        ...

    async def count(self) -> int:
        """How many records there are now."""
        ...

    def version_of(self, doc: dict[str, Any]) -> int | None:
        """The store's own version of a document (the mapping's `version_field`), if any."""
        ...

    def sort_key(self, key: str) -> Any:
        """A value that orders keys as the store does (for key-range splits)."""
        ...

    async def aclose(self) -> None:
        """Release connections and file handles."""
        ...


class InMemoryLegacyStore:
    """A dict-backed store: for tests, demos and as the reference behaviour of an adapter."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], LegacyRecord] = {}

    def put(self, entity: str, key: str, doc: dict[str, Any], version: int | None = None) -> None:
        """Write a record."""
        self._data[(entity, key)] = LegacyRecord(key, doc, version)

    def remove(self, entity: str, key: str) -> None:
        """Delete a record."""
        self._data.pop((entity, key), None)

    async def read(self, entity: str, key: str) -> LegacyRecord | None:
        """The record now, or None."""
        return self._data.get((entity, key))
