"""Every example app's generator writes its real legacy store, and the adapters the mapping's
`source:` names read back exactly the records that were generated."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from dualsync.producers.stores import open_stores
from dualsync.schema.extjson import dumps_payload, loads_payload
from dualsync.schema.mapping import load_mapping
from examples._legacy import LegacyDoc
from examples._stores import write_mongo, write_tree

ROOT = Path(__file__).resolve().parent.parent
FILE_APPS = ("donna", "tzurot", "dovvy")
MONGO_APPS = ("astro", "panamia")


def _generated(app: str, n: int) -> tuple[list[LegacyDoc], Any]:
    module = __import__(f"examples.{app}.generator", fromlist=["generate"])
    return list(module.generate(n, 11)), getattr(module, "FILE_KEYS", None)


def _plain(doc: dict[str, Any]) -> Any:
    """A document as JSON sees it (dates as the payload carries them)."""
    return loads_payload(dumps_payload(doc))


async def _check(app: str, docs: list[LegacyDoc], stores: Any) -> None:
    want: dict[str, dict[str, Any]] = defaultdict(dict)
    for d in docs:
        want[d.entity][d.key] = d.doc
    assert set(stores.stores) == set(want), app  # every entity has a source
    for entity, records in want.items():
        store = stores[entity]
        keys = [k async for chunk in store.iter_keys() for k in chunk]
        assert sorted(keys) == sorted(records), (app, entity)
        got = await store.get_many(list(records))
        for key, doc in records.items():
            assert _plain(got[key].doc) == _plain(doc), (app, entity, key)


@pytest.mark.parametrize("app", FILE_APPS)
async def test_json_apps_round_trip_through_their_sources(app: str, tmp_path: Path) -> None:
    ms = load_mapping(ROOT / "examples" / app / "mapping.yaml")
    docs, file_keys = _generated(app, 25)
    counts = write_tree(ms, docs, tmp_path, file_keys)
    assert sum(counts.values()) == len(docs)
    await _check(app, docs, open_stores(ms, root=tmp_path))


@pytest.mark.parametrize("app", MONGO_APPS)
async def test_mongo_apps_round_trip_through_their_sources(app: str, mock_mongo_db: Any) -> None:
    ms = load_mapping(ROOT / "examples" / app / "mapping.yaml")
    docs, _ = _generated(app, 25)
    await write_mongo(ms, docs, mock_mongo_db)
    await _check(app, docs, open_stores(ms, mongo_db=mock_mongo_db))


def test_generator_cli(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "examples.tzurot.generator", "--out", str(tmp_path),
         "--scale", "5", "--seed", "2"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "conversations: 5" in proc.stdout
    assert (tmp_path / "data" / "conversations.json").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "examples.panamia.generator", "--scale", "5"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "--mongo URL" in bad.stderr
    assert "Traceback" not in bad.stderr
