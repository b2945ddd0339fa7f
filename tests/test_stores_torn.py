"""JSON adapters read files the app is rewriting: torn or partial JSON never becomes a record."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest

from dualsync.producers.stores import (
    JsonDirStore,
    JsonFileStore,
    JsonLinesStore,
    UnreadableFileError,
)
from dualsync.schema.mapping import load_mapping
from dualsync.schema.mapping.errors import MappingError


def test_a_file_that_stays_torn_is_reported_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_bytes(b'{"a": 1}')
    (tmp_path / "torn.json").write_bytes(b'{"a": 1, "b": [1, 2')
    store = JsonDirStore("users", tmp_path)
    with pytest.raises(UnreadableFileError) as err:
        store._get("torn")
    assert "torn.json" in str(err.value)
    assert "not valid JSON" in str(err.value)
    assert '"b"' not in str(err.value)  # the content is never quoted
    found = store._get_many(["good", "torn"])
    assert list(found) == ["good"]
    assert str(tmp_path / "torn.json") in store.unreadable


def test_a_file_completed_during_the_read_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "late.json"
    path.write_bytes(b'{"name": "half')
    full = orjson.dumps({"name": "whole", "n": list(range(100))})
    threading.Timer(0.03, path.write_bytes, [full]).start()
    rec = JsonDirStore("users", tmp_path)._get("late")
    assert rec is not None
    assert rec.doc["name"] == "whole"


def test_rewritten_in_place_while_read_never_yields_garbage(tmp_path: Path) -> None:
    """A writer rewrites the file in place (truncate, half, pause, rest) as PHP's
    file_put_contents does; every read is one whole version or a reported skip."""
    path = tmp_path / "u.json"
    versions = [orjson.dumps({"v": i, "pad": "x" * (i * 37 % 900)}) for i in range(50)]
    path.write_bytes(versions[0])
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            data = versions[i % len(versions)]
            with path.open("r+b") as fh:
                fh.truncate(0)
                fh.write(data[: len(data) // 2])
                fh.flush()
                time.sleep(0.0005)
                fh.write(data[len(data) // 2 :])
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    store = JsonDirStore("users", tmp_path)
    whole = skipped = 0
    try:
        for _ in range(120):
            try:
                rec = store._get("u")
            except UnreadableFileError:
                skipped += 1
                continue
            assert rec is not None
            assert orjson.dumps(rec.doc) in versions
            whole += 1
    finally:
        stop.set()
        t.join()
    assert whole > 0


def test_json_file_values_that_are_not_objects(tmp_path: Path) -> None:
    path = tmp_path / "aliases.json"
    path.write_bytes(orjson.dumps({"lily": "Lilith the Archivist", "bob": "Bob"}))
    store = JsonFileStore("aliases", path)
    rec = store._get("lily")
    assert rec is not None
    assert rec.doc == {"value": "Lilith the Archivist"}
    assert store._keys() == ["bob", "lily"]


def test_json_file_depth_two_keys(tmp_path: Path) -> None:
    path = tmp_path / "auth_tokens.json"
    path.write_bytes(orjson.dumps({"u1": {"p1": {"token": "t"}, "p2": {"token": "s"}}, "u2": {}}))
    store = JsonFileStore("auth_tokens", path, depth=2)
    assert store._keys() == ["u1:p1", "u1:p2"]
    rec = store._get("u1:p2")
    assert rec is not None
    assert rec.doc == {"token": "s"}


def test_json_file_parsed_once_per_version(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(orjson.dumps({f"k{i}": {"i": i} for i in range(1000)}))
    store = JsonFileStore("big", path)
    first = store.snapshot()[0]
    assert store.snapshot()[0] is first  # same stamp: no re-parse
    path.write_bytes(orjson.dumps({"k0": {"i": -1}}))
    assert store.snapshot()[0] is not first
    rec = store._get("k0")
    assert rec is not None
    assert rec.doc == {"i": -1}


def test_json_lines_torn_tail_and_bad_lines(tmp_path: Path) -> None:
    logs = tmp_path / "api" / "logs"
    logs.mkdir(parents=True)
    f = logs / "x.log"
    f.write_bytes(b'{"n": 1}\nnot json\n{"n": 3}\n{"n": 4, "unfinis')
    store = JsonLinesStore("logs", tmp_path, "api/logs/*.log")
    assert store._keys() == ["x.log:1", "x.log:3"]
    assert store._get("x.log:4") is None  # still being written
    with f.open("ab") as fh:
        fh.write(b'hed": true}\n')
    rec = store._get("x.log:4")
    assert rec is not None
    assert rec.doc == {"n": 4, "unfinished": True}
    assert store._get("../../etc/passwd:1") is None


def test_keys_cannot_leave_the_folder(tmp_path: Path) -> None:
    store = JsonDirStore("users", tmp_path / "memory")
    for bad in ("../secrets", "a/b", ".hidden", "x\x00y"):
        with pytest.raises(MappingError):
            store._get(bad)


def test_a_scalar_record_maps_through_dollar_value(tmp_path: Path) -> None:
    """tzurot's aliases.json `{alias: fullName}`: the adapter carries the name as
    `{"value": ...}` and the mapping's `from: $value` reads it."""

    ms = load_mapping(Path(__file__).resolve().parent.parent / "examples/tzurot/mapping.yaml")
    path = tmp_path / "aliases.json"
    path.write_bytes(orjson.dumps({"lily": "lilith-the-archivist"}))
    rec = JsonFileStore("personality_aliases", path)._get("lily")
    assert rec is not None
    rows = ms.entity("personality_aliases").to_rows(rec.key, rec.doc)
    assert "lilith-the-archivist" in rows.values


def test_wildcards_of_the_glob_make_the_key_both_ways(tmp_path: Path) -> None:
    """dovvy's dive sites live at `<destination>/sites/<site>.json`: key `dest/site`."""
    d = tmp_path / "destinations"
    (d / "bali" / "sites").mkdir(parents=True)
    (d / "bali" / "sites" / "tulamben.json").write_bytes(orjson.dumps({"id": "bali/tulamben"}))
    (d / "bali.json").write_bytes(b"{}")  # the destination itself: not a site
    store = JsonDirStore("dive_sites", d, "*/sites/*.json")
    assert store._keys() == ["bali/tulamben"]
    rec = store._get("bali/tulamben")
    assert rec is not None
    assert rec.doc == {"id": "bali/tulamben"}
    for bad in ("bali", "bali/../x", "../etc/passwd", "a/b/c", ".hidden/x"):
        with pytest.raises(MappingError):
            store._get(bad)
