"""`mongo`: one MongoDB collection per entity, read with motor.

The key is the string the app publishes for `_id`: ObjectId hex, the string itself, or an
integer in decimal. `id_type: auto` decides from the collection's first `_id` (collections
have one `_id` type in practice); key order is `_id` order, so `iter_*` resume exactly with
`_id > after`. Sampling is seeded (reservoir over the `_id` index, a covered scan) rather
than `$sample`, whose choice cannot be repeated.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

from dualsync.producers.stores._base import VersionOf
from dualsync.schema.legacy import LegacyRecord
from dualsync.schema.mapping.errors import MappingError

__all__ = ["MongoStore", "key_of"]


def key_of(value: Any) -> str:
    """The key string of an `_id` value."""
    return str(value)


class MongoStore:
    """A collection as a `LegacyStore` (`collection` is a motor or mongomock-motor one)."""

    def __init__(
        self,
        entity: str,
        collection: Any,
        *,
        id_type: str = "auto",
        version_of: VersionOf | None = None,
    ) -> None:
        self.entity = entity
        self._coll = collection
        self._id_type = id_type
        self._version_of = version_of

    async def _kind(self) -> str:
        if self._id_type == "auto":
            first = await self._coll.find_one({}, {"_id": 1}, sort=[("_id", 1)])
            value = None if first is None else first["_id"]
            if isinstance(value, ObjectId):
                self._id_type = "objectid"
            elif isinstance(value, int) and not isinstance(value, bool):
                self._id_type = "int"
            elif value is not None:
                self._id_type = "string"
            else:
                return "objectid"  # empty collection: decide again once it has documents
        return self._id_type

    async def id_of(self, key: str) -> Any:
        """The `_id` value of a key (raises `MappingError` when it cannot be one)."""
        kind = await self._kind()
        try:
            if kind == "objectid":
                return ObjectId(key)
            if kind == "int":
                return int(key)
        except (InvalidId, TypeError, ValueError):
            raise MappingError(
                f"{self.entity}: key {key[:64]!r} is not a valid {kind} _id",
                entity=self.entity, key=key[:64], field="$key",
            ) from None  # fmt: skip
        return key

    def version_of(self, doc: dict[str, Any]) -> int | None:
        """The mapping's `version_field` of a document, if it has one."""
        return self._version_of(doc) if self._version_of is not None else None

    def sort_key(self, key: str) -> Any:
        """`_id` order: integers by value; ObjectId hex and strings as text (call after
        a read, when the `_id` type is known)."""
        if self._id_type == "int":
            try:
                return int(key)
            except ValueError:
                return key
        return key

    def _record(self, doc: dict[str, Any]) -> LegacyRecord:
        return LegacyRecord(key_of(doc["_id"]), doc, self.version_of(doc))

    async def read(self, entity: str, key: str) -> LegacyRecord | None:
        """`LegacyReader`: the record of `key` when `entity` is this store's."""
        return await self.get(key) if entity == self.entity else None

    async def get(self, key: str) -> LegacyRecord | None:
        """The document now, or None."""
        doc = await self._coll.find_one({"_id": await self.id_of(key)})
        return None if doc is None else self._record(doc)

    async def get_many(self, keys: Sequence[str]) -> dict[str, LegacyRecord]:
        """The existing documents among `keys`."""
        ids = [await self.id_of(k) for k in keys]
        out: dict[str, LegacyRecord] = {}
        async for doc in self._coll.find({"_id": {"$in": ids}}):
            rec = self._record(doc)
            out[rec.key] = rec
        return out

    async def _scan(
        self, after: str | None, chunk: int, projection: dict[str, int] | None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """One cursor in `_id` order (the server sends it in batches of `chunk`): not one
        query per chunk, which costs a sort per chunk on stores without an index walk."""
        query = {} if after is None else {"_id": {"$gt": await self.id_of(after)}}
        size = max(chunk, 1)
        cursor = self._coll.find(query, projection).sort("_id", 1).batch_size(size)
        batch: list[dict[str, Any]] = []
        async for doc in cursor:
            batch.append(doc)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    async def iter_keys(
        self, after: str | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[str]]:
        """Every key in `_id` order after `after`."""
        async for batch in self._scan(after, chunk, {"_id": 1}):
            yield [key_of(d["_id"]) for d in batch]

    async def iter_records(
        self, after: str | None = None, chunk: int = 1000
    ) -> AsyncIterator[list[LegacyRecord]]:
        """Every document in `_id` order after `after`."""
        async for batch in self._scan(after, chunk, None):
            yield [self._record(d) for d in batch]

    async def sample_keys(self, n: int, seed: int) -> list[str]:
        """Up to `n` keys by seeded reservoir sampling over the `_id` index."""
        rng = random.Random(seed)
        picked: list[str] = []
        seen = 0
        async for keys in self.iter_keys(chunk=5000):
            for k in keys:
                seen += 1
                if len(picked) < n:
                    picked.append(k)
                else:
                    j = rng.randrange(seen)
                    if j < n:
                        picked[j] = k
        return picked

    async def count(self) -> int:
        """Documents in the collection now."""
        return int(await self._coll.count_documents({}))

    async def aclose(self) -> None:
        """The client belongs to whoever opened it (`open_stores`), which closes it."""
