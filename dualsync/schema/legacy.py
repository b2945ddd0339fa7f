"""The legacy-store read interface: how the worker re-reads a record for a reference event.

Adapters (MongoDB via motor, a JSON directory, a single JSON file) live in
`dualsync.producers`; the worker only sees this Protocol, injected at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["InMemoryLegacyStore", "LegacyReader", "LegacyRecord"]


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
