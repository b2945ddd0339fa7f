"""Build the adapters a mapping's `source:` sections describe, and one reader over them.

`LegacyStores` is what the worker's reference-event re-read and the verifier use: it routes
`read(entity, key)` to that entity's store. Mongo clients are opened here and closed with
the set; file adapters hold nothing open between reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from dualsync.errors import ConfigError
from dualsync.producers.stores._base import VersionOf
from dualsync.producers.stores.json_dir import JsonDirStore
from dualsync.producers.stores.json_file import JsonFileStore
from dualsync.producers.stores.json_lines import JsonLinesStore
from dualsync.producers.stores.mongo import MongoStore
from dualsync.schema.legacy import LegacyRecord, LegacyStore
from dualsync.schema.mapping import MappingSet
from dualsync.schema.mapping.source import SourceModel

__all__ = ["LegacyStores", "open_stores", "store_for"]


def _under(root: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else root / p


def store_for(
    entity: str,
    source: SourceModel,
    *,
    root: Path,
    mongo_db: Any = None,
    version_of: VersionOf | None = None,
) -> LegacyStore:
    """The adapter of one entity's source (`mongo_db`: a motor database, for `mongo:`)."""
    if source.mongo is not None:
        if mongo_db is None:
            raise ConfigError(
                f"entity {entity!r} lives in MongoDB: set MONGO_URL (or pass --mongo URL)"
            )
        db = mongo_db if source.mongo.database is None else mongo_db.client[source.mongo.database]
        return MongoStore(
            entity, db[source.mongo.collection], id_type=source.mongo.id_type,
            version_of=version_of,
        )  # fmt: skip
    if source.json_dir is not None:
        return JsonDirStore(
            entity, _under(root, source.json_dir.dir), source.json_dir.glob, version_of
        )
    if source.json_file is not None:
        return JsonFileStore(
            entity,
            _under(root, source.json_file.file),
            depth=source.json_file.depth,
            key_separator=source.json_file.key_separator,
            key_field=source.json_file.key_field,
            version_of=version_of,
        )
    assert source.json_lines is not None  # noqa: S101 - SourceModel validated exactly one
    return JsonLinesStore(entity, root, source.json_lines.glob, version_of)


class LegacyStores:
    """Every entity's store; a `LegacyReader` over all of them."""

    def __init__(
        self, stores: Mapping[str, LegacyStore], *, closers: list[Any] | None = None
    ) -> None:
        self.stores = dict(stores)
        self._closers = closers or []

    def __getitem__(self, entity: str) -> LegacyStore:
        store = self.stores.get(entity)
        if store is None:
            raise ConfigError(
                f"entity {entity!r} has no `source:` in its mapping, so its legacy records "
                f"cannot be read (entities with one: {', '.join(sorted(self.stores)) or 'none'})"
            )
        return store

    async def read(self, entity: str, key: str) -> LegacyRecord | None:
        """The record now, from the entity's own store."""
        return await self[entity].get(key)

    def close(self) -> None:
        """Close the clients opened for the stores (file stores hold nothing open)."""
        for c in self._closers:
            c.close()
        self._closers = []

    async def aclose(self) -> None:
        """Close every store and the clients opened for them."""
        for s in self.stores.values():
            await s.aclose()
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def open_stores(
    ms: MappingSet,
    *,
    root: Path | None = None,
    mongo_db: Any = None,
    mongo_url: str | None = None,
    kinds: frozenset[str] | None = None,
) -> LegacyStores:
    """The stores of every entity with a `source:`; relative paths under `root` (default:
    the mapping file's folder). Mongo comes from `mongo_db` (a motor database, e.g.
    mongomock-motor's) or is opened from `mongo_url` and closed with the set. `kinds`
    keeps only sources of those kinds (`{"json_dir", "json_file", "json_lines"}`)."""
    root = root or ms.path.parent
    model = ms.model
    sources = {
        n: e.source
        for n, e in (model.entities.items() if model else ())
        if e.source is not None and (kinds is None or e.source.kind in kinds)
    }
    closers: list[Any] = []
    if mongo_db is None and mongo_url and any(s.mongo for s in sources.values()):
        from motor.motor_asyncio import AsyncIOMotorClient  # noqa: PLC0415 - only for Mongo

        client: Any = AsyncIOMotorClient(mongo_url, tz_aware=True)
        closers.append(client)
        try:
            mongo_db = client.get_default_database()
        except Exception:  # noqa: BLE001 - pymongo raises ConfigurationError without a db name
            mongo_db = client[ms.app]
    stores = {}
    for name, source in sources.items():
        em = ms.entity(name)
        stores[name] = store_for(
            name, source, root=root, mongo_db=mongo_db,
            version_of=em.version_from if em.version_field else None,
        )  # fmt: skip
    return LegacyStores(stores, closers=closers)
