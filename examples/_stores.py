"""Write generated documents into real legacy stores, laid out as each mapping's `source:`.

`python -m examples.<app>.generator --out DIR` writes the JSON tree the legacy app would
have (one file per record, one big object, appended log lines); `--mongo URL` fills the
collections. The same writer serves the tests and the demo (with mongomock-motor).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from dualsync.producers.stores.json_dir import KeyLayout
from dualsync.producers.stores.json_lines import glob_base
from dualsync.schema.mapping import MappingSet, load_mapping
from dualsync.schema.mapping.source import SourceModel
from examples._legacy import LegacyDoc

__all__ = ["generator_main", "sources_of", "write_mongo", "write_tree"]

#: PHP's json_encode and Node's JSON.stringify keep non-ASCII characters as they are
_DUMP = orjson.OPT_NON_STR_KEYS


def sources_of(ms: MappingSet) -> dict[str, SourceModel]:
    """The `source:` of every entity that has one."""
    model = ms.model
    return {n: e.source for n, e in (model.entities.items() if model else ()) if e.source}


def _raw(doc: dict[str, Any]) -> Any:
    """A record as the file holds it: `{"value": v}` payloads were scalars in the file."""
    return doc["value"] if set(doc) == {"value"} else doc


#: entity -> the object key a `json_file` with `key_field` files a record under
FileKeys = Mapping[str, Callable[[dict[str, Any]], str]]


def write_tree(
    ms: MappingSet, docs: Iterable[LegacyDoc], out: Path, file_keys: FileKeys | None = None
) -> dict[str, int]:
    """Write every document of a file-based source under `out`; counts per entity."""
    sources = sources_of(ms)
    file_keys = file_keys or {}
    counts: dict[str, int] = defaultdict(int)
    big: dict[Path, tuple[int, dict[str, Any]]] = {}
    lines: dict[Path, list[tuple[int, bytes]]] = defaultdict(list)
    for d in docs:
        src = sources.get(d.entity)
        if src is None or src.mongo is not None:
            continue
        counts[d.entity] += 1
        if src.json_dir is not None:
            rel = KeyLayout(src.json_dir.glob).path_of(d.entity, d.key)
            path = out / src.json_dir.dir / (rel or f"{d.key}.json")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(orjson.dumps(d.doc, option=_DUMP))
        elif src.json_file is not None:
            path = out / src.json_file.file
            depth, data = big.setdefault(path, (src.json_file.depth, {}))
            key = file_keys[d.entity](d.doc) if d.entity in file_keys else d.key
            if depth == 1:
                data[key] = _raw(d.doc)
            else:
                outer, inner = key.split(src.json_file.key_separator, 1)
                data.setdefault(outer, {})[inner] = _raw(d.doc)
        elif src.json_lines is not None:
            base, _ = glob_base(src.json_lines.glob)
            name, _, line = d.key.rpartition(":")
            lines[out / base / name].append((int(line), orjson.dumps(d.doc, option=_DUMP)))
    for path, (_, data) in big.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(data, option=_DUMP | orjson.OPT_INDENT_2))
    for path, items in lines.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(b + b"\n" for _, b in sorted(items)))
    return dict(counts)


async def write_mongo(
    ms: MappingSet, docs: Iterable[LegacyDoc], db: Any, *, batch: int = 1000
) -> dict[str, int]:
    """Insert every document of a Mongo source into `db`; counts per entity."""
    sources = sources_of(ms)
    counts: dict[str, int] = defaultdict(int)
    pending: dict[str, list[dict[str, Any]]] = defaultdict(list)

    async def flush(coll: str) -> None:
        if pending[coll]:
            await db[coll].insert_many(pending[coll], ordered=False)
            pending[coll] = []

    for d in docs:
        src = sources.get(d.entity)
        if src is None or src.mongo is None:
            continue
        counts[d.entity] += 1
        coll = src.mongo.collection
        pending[coll].append(d.doc)
        if len(pending[coll]) >= batch:
            await flush(coll)
    for coll in list(pending):
        await flush(coll)
    return dict(counts)


def generator_main(
    app_dir: Path,
    generate: Callable[[int, int], Iterator[LegacyDoc]],
    argv: list[str] | None,
    file_keys: FileKeys | None = None,
) -> int:
    """The CLI of every example generator."""
    ms = load_mapping(app_dir / "mapping.yaml")
    parser = argparse.ArgumentParser(
        prog=f"python -m examples.{ms.app}.generator",
        description=f"Write realistic legacy records of {ms.app} into a real store, "
        "laid out as its mapping's source: sections say.",
    )
    parser.add_argument("--out", type=Path, help="folder of the JSON tree (file-based sources)")
    parser.add_argument("--mongo", help="MongoDB URL for Mongo sources (database: the app's)")
    parser.add_argument("--scale", type=int, default=1000, help="records per entity (1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be at least 1")
    kinds = {s.kind for s in sources_of(ms).values()}
    wants_mongo = "mongo" in kinds
    if wants_mongo and not args.mongo:
        parser.error(f"{ms.app} lives in MongoDB: pass --mongo URL")
    if kinds - {"mongo"} and args.out is None:
        parser.error(f"{ms.app} lives in JSON files: pass --out DIR")
    docs = list(generate(args.scale, args.seed))
    counts: dict[str, int] = {}
    if args.out is not None:
        counts |= write_tree(ms, docs, args.out, file_keys)
    if wants_mongo:
        counts |= asyncio.run(_to_mongo(ms, docs, args.mongo))
    for entity, n in counts.items():
        print(f"{entity}: {n}")  # noqa: T201 - CLI output
    return 0


async def _to_mongo(ms: MappingSet, docs: list[LegacyDoc], url: str) -> dict[str, int]:
    from motor.motor_asyncio import AsyncIOMotorClient  # noqa: PLC0415 - only with --mongo

    client: Any = AsyncIOMotorClient(url)
    try:
        return await write_mongo(ms, docs, client[ms.app])
    finally:
        client.close()
