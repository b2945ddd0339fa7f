"""Legacy-store adapters: one contract suite run against every kind of store.

Each backend gets a writer that puts and removes records the way its legacy app would
(a file per record, one object rewritten whole, appended lines, Mongo documents), then
the same assertions run over the `LegacyStore` protocol.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from bson import ObjectId

from dualsync.producers.stores import (
    JsonDirStore,
    JsonFileStore,
    JsonLinesStore,
    MongoStore,
)
from dualsync.schema.legacy import LegacyStore


def _version(doc: dict[str, Any]) -> int | None:
    v = doc.get("rev")
    return v if isinstance(v, int) else None


@dataclass
class Backend:
    """A store plus a way to write records into it as the legacy app would."""

    store: LegacyStore
    put: Callable[[str, dict[str, Any]], Any]
    remove: Callable[[str], Any]
    #: keys are whatever the backend makes them (line keys are assigned by append order)
    key_for: Callable[[int], str]


class _JsonObjectFile:
    """tzurot-style: the whole object rewritten on every write."""

    def __init__(self, path: Path, depth: int) -> None:
        self.path, self.depth = path, depth
        self.data: dict[str, Any] = {}

    def put(self, key: str, doc: dict[str, Any]) -> None:
        if self.depth == 1:
            self.data[key] = doc
        else:
            outer, inner = key.split(":", 1)
            self.data.setdefault(outer, {})[inner] = doc
        self.path.write_bytes(orjson.dumps(self.data))

    def remove(self, key: str) -> None:
        if self.depth == 1:
            self.data.pop(key, None)
        else:
            outer, inner = key.split(":", 1)
            self.data.get(outer, {}).pop(inner, None)
        self.path.write_bytes(orjson.dumps(self.data))


def _hexid(i: int) -> str:
    return str(ObjectId(i.to_bytes(4, "big") + b"\x00" * 8))


@pytest.fixture(params=["json_dir", "json_file", "json_file_depth2", "json_lines", "mongomock"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, mock_mongo_db: Any
) -> AsyncIterator[Backend]:
    kind = request.param
    if kind == "json_dir":
        d = tmp_path / "memory"
        d.mkdir()
        yield Backend(
            JsonDirStore("users", d, "*.json", _version),
            lambda k, doc: (d / f"{k}.json").write_bytes(orjson.dumps(doc)),
            lambda k: (d / f"{k}.json").unlink(missing_ok=True),
            lambda i: f"user_{i:05d}",
        )
    elif kind in {"json_file", "json_file_depth2"}:
        depth = 1 if kind == "json_file" else 2
        f = _JsonObjectFile(tmp_path / "all.json", depth)
        yield Backend(
            JsonFileStore("users", f.path, depth=depth, version_of=_version),
            f.put,
            f.remove,
            (lambda i: f"u{i:05d}") if depth == 1 else (lambda i: f"u{i % 7}:p{i:05d}"),
        )
    elif kind == "json_lines":
        logs = tmp_path / "api" / "logs"
        logs.mkdir(parents=True)

        def append(key: str, doc: dict[str, Any]) -> None:
            name, _, _ = key.rpartition(":")
            with (logs / name).open("ab") as fh:
                fh.write(orjson.dumps(doc) + b"\n")

        yield Backend(
            JsonLinesStore("logs", tmp_path, "api/logs/*.log", _version),
            append,
            lambda _k: pytest.skip("json_lines records are append-only: nothing is removed"),
            lambda i: f"{'a' if i < 60 else 'b'}.log:{i + 1 if i < 60 else i - 59}",
        )
    else:
        coll = mock_mongo_db["users"]

        async def put(k: str, doc: dict[str, Any]) -> None:
            await coll.replace_one({"_id": ObjectId(k)}, {"_id": ObjectId(k), **doc}, upsert=True)

        async def remove(k: str) -> None:
            await coll.delete_one({"_id": ObjectId(k)})

        yield Backend(MongoStore("users", coll, version_of=_version), put, remove, _hexid)


async def _call(result: Any) -> None:
    if hasattr(result, "__await__"):
        await result


async def _fill(b: Backend, n: int) -> list[str]:
    keys = [b.key_for(i) for i in range(n)]
    for i, k in enumerate(keys):
        await _call(b.put(k, {"name": f"n{i}", "rev": i, "tags": ["x", "ü😀"]}))
    return keys


async def test_get_and_get_many(backend: Backend) -> None:
    keys = await _fill(backend, 12)
    rec = await backend.store.get(keys[3])
    assert rec is not None
    assert rec.key == keys[3]
    assert rec.doc["name"] == "n3"
    assert rec.doc["tags"] == ["x", "ü😀"]
    assert rec.version == 3
    assert backend.store.version_of(rec.doc) == 3
    many = await backend.store.get_many([keys[0], keys[5], keys[11]])
    assert {k: r.doc["name"] for k, r in many.items()} == {
        keys[0]: "n0",
        keys[5]: "n5",
        keys[11]: "n11",
    }
    assert await backend.store.read("users" if backend.store.entity == "users" else "logs", keys[1])
    assert await backend.store.read("not-this-entity", keys[1]) is None


async def test_missing_and_removed(backend: Backend) -> None:
    keys = await _fill(backend, 5)
    missing = backend.key_for(999) if not isinstance(backend.store, JsonLinesStore) else "a.log:999"
    assert await backend.store.get(missing) is None
    if isinstance(backend.store, JsonLinesStore):
        return  # append-only
    await _call(backend.remove(keys[2]))
    assert await backend.store.get(keys[2]) is None
    assert await backend.store.count() == 4
    assert keys[2] not in await backend.store.get_many(keys)


async def test_iter_keys_in_order_and_resumes_exactly(backend: Backend) -> None:
    keys = await _fill(backend, 100)
    chunks = [c async for c in backend.store.iter_keys(chunk=7)]
    flat = [k for c in chunks for k in c]
    assert sorted(flat) == sorted(keys)
    assert len(set(flat)) == 100
    assert all(len(c) <= 7 for c in chunks)
    # resuming after any key continues exactly where the order was
    cut = flat[41]
    rest = [k async for c in backend.store.iter_keys(after=cut, chunk=10) for k in c]
    assert rest == flat[42:]
    records = [r async for c in backend.store.iter_records(after=cut, chunk=9) for r in c]
    assert [r.key for r in records] == flat[42:]
    assert await backend.store.count() == 100


async def test_sample_keys_is_seeded_and_distinct(backend: Backend) -> None:
    keys = await _fill(backend, 80)
    a = await backend.store.sample_keys(20, seed=7)
    b = await backend.store.sample_keys(20, seed=7)
    c = await backend.store.sample_keys(20, seed=8)
    assert a == b
    assert len(set(a)) == 20
    assert set(a) <= set(keys)
    assert a != c
    assert sorted(await backend.store.sample_keys(500, seed=1)) == sorted(keys)


@pytest.mark.mongo
async def test_real_mongo_any_id_type(real_mongo_db: Any) -> None:
    """Against a real server: ObjectId, string and integer `_id`s, BSON types kept."""
    await _mongo_id_types(real_mongo_db)


async def test_mongomock_any_id_type(mock_mongo_db: Any) -> None:
    await _mongo_id_types(mock_mongo_db)


async def _mongo_id_types(db: Any) -> None:
    when = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    await db["a"].insert_many([{"_id": ObjectId(), "at": when} for _ in range(5)])
    await db["b"].insert_many([{"_id": f"slug-{i}"} for i in range(5)])
    await db["c"].insert_many([{"_id": i * 10} for i in range(5)])
    for coll, probe in (("a", None), ("b", "slug-3"), ("c", "30")):
        store = MongoStore(coll, db[coll])
        keys = [k async for c in store.iter_keys() for k in c]
        assert len(keys) == 5
        rec = await store.get(probe or keys[2])
        assert rec is not None
        assert rec.key == (probe or keys[2])
    first = [k async for c in MongoStore("a", db["a"]).iter_keys() for k in c][:1]
    assert first
    rec = await MongoStore("a", db["a"]).get(first[0])
    assert rec is not None
    assert rec.doc["at"].replace(tzinfo=dt.UTC) == when
