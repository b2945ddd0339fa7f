"""What every file adapter shares: key listing, async wrappers, sampling, the reader call."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from dualsync.logging import get_logger
from dualsync.producers.stores._files import UnreadableFileError
from dualsync.producers.stores._order import chunks_after, sample
from dualsync.schema.legacy import LegacyRecord

__all__ = ["FileStore", "VersionOf", "as_document"]

log = get_logger(__name__)

#: the store's own version of a document (the mapping's `version_field`), or None
VersionOf = Callable[[dict[str, Any]], int | None]


def as_document(value: Any) -> dict[str, Any]:
    """A record as an event payload: objects as they are, anything else as `{"value": v}`
    (tzurot's `aliases.json` maps alias -> name; the mapping reads it with `from: $value`)."""
    return value if isinstance(value, dict) else {"value": value}


class FileStore(ABC):
    """Base of the JSON adapters: subclasses list keys and read one record, synchronously."""

    entity: str

    def __init__(self, entity: str, version_of: VersionOf | None = None) -> None:
        self.entity = entity
        self._version_of = version_of
        #: files skipped because they stayed unreadable, on the last pass
        self.unreadable: dict[str, str] = {}

    # -- what a subclass provides ------------------------------------------------------
    @abstractmethod
    def _keys(self) -> list[str]:
        """Every key, in key order."""

    @abstractmethod
    def _get(self, key: str) -> LegacyRecord | None:
        """One record, or None."""

    def _get_many(self, keys: Sequence[str]) -> dict[str, LegacyRecord]:
        out: dict[str, LegacyRecord] = {}
        for k in keys:
            try:
                rec = self._get(k)
            except UnreadableFileError as exc:
                self._report(exc)
                continue
            if rec is not None:
                out[k] = rec
        return out

    # -- the LegacyStore protocol ------------------------------------------------------
    def version_of(self, doc: dict[str, Any]) -> int | None:
        """The mapping's `version_field` of a document, if it has one."""
        return self._version_of(doc) if self._version_of is not None else None

    def sort_key(self, key: str) -> Any:
        """File stems and object keys are listed in string order."""
        return key

    def _record(self, key: str, value: Any) -> LegacyRecord:
        doc = as_document(value)
        return LegacyRecord(key, doc, self.version_of(doc))

    def _report(self, exc: UnreadableFileError) -> None:
        self.unreadable[str(exc.path)] = exc.why
        log.warning("legacy_file_skipped", entity=self.entity, path=str(exc.path), why=exc.why)

    async def read(self, entity: str, key: str) -> LegacyRecord | None:
        """`LegacyReader`: the record of `key` when `entity` is this store's."""
        return await self.get(key) if entity == self.entity else None

    async def get(self, key: str) -> LegacyRecord | None:
        """The record now, or None (raises `UnreadableFileError` for a torn file)."""
        return await asyncio.to_thread(self._get, key)

    async def get_many(self, keys: Sequence[str]) -> dict[str, LegacyRecord]:
        """The existing records among `keys`; unreadable files are reported and skipped."""
        return await asyncio.to_thread(self._get_many, keys)

    async def iter_keys(
        self, after: str | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[str]]:
        """Every key in key order after `after`, `chunk` at a time."""
        keys = await asyncio.to_thread(self._keys)
        for part in chunks_after(keys, after, chunk):
            yield part

    async def iter_records(
        self, after: str | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[LegacyRecord]]:
        """Every readable record in key order after `after`, `chunk` at a time."""
        async for keys in self.iter_keys(after, chunk):
            found = await self.get_many(keys)
            yield [found[k] for k in keys if k in found]

    async def sample_keys(self, n: int, seed: int) -> list[str]:
        """Up to `n` distinct keys, seeded."""
        return sample(await asyncio.to_thread(self._keys), n, seed)

    async def count(self) -> int:
        """How many records there are now."""
        return len(await asyncio.to_thread(self._keys))

    async def aclose(self) -> None:  # noqa: B027 - a real no-op: files are opened per read
        """Nothing to release: files are opened per read."""
