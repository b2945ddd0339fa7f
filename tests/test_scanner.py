"""`dualsync scan`'s core: creates, edits and deletes in JSON sources become events, once.

State lives in the real test Redis; events are collected as the publisher would get them
(one test drives a real `Publisher` into the real streams).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aredis

from dualsync.producers import EventSpec, Publisher, stream_keys
from dualsync.producers.scanner import Scanner, ScanState
from dualsync.producers.stores import JsonDirStore, JsonFileStore, JsonLinesStore


class Sent:
    """A publish function that records what it was given."""

    def __init__(self) -> None:
        self.events: list[EventSpec] = []

    def __call__(self, specs: list[EventSpec]) -> None:
        self.events.extend(specs)

    def take(self) -> list[tuple[str, str]]:
        out = [(str(e.op), e.key) for e in self.events]
        self.events.clear()
        return out


async def _scanner(client: aredis.Redis, prefix: str, store: Any, sent: Sent, **kw: Any) -> Scanner:
    return Scanner(store, ScanState(client, prefix, store.entity), sent, **kw)


async def test_json_dir_of_10000_files(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    d = tmp_path / "memory"
    d.mkdir()
    for i in range(10_000):
        (d / f"user_{i:05d}.json").write_bytes(orjson.dumps({"i": i, "name": f"u{i}"}))
    client = aredis.Redis.from_url(redis_url)
    sent = Sent()
    scanner = await _scanner(client, redis_prefix, JsonDirStore("users", d), sent)
    first = await scanner.scan()
    assert first.upserts == 10_000
    assert len(sent.take()) == 10_000
    assert (await scanner.scan()).upserts == 0  # unchanged tree: nothing
    assert sent.take() == []
    # an edit, a create, a delete, a touch without a change
    (d / "user_00042.json").write_bytes(orjson.dumps({"i": 42, "name": "renamed"}))
    (d / "user_99999.json").write_bytes(orjson.dumps({"i": 99999}))
    (d / "user_00007.json").unlink()
    time.sleep(0.01)
    (d / "user_00100.json").write_bytes(orjson.dumps({"i": 100, "name": "u100"}))  # same bytes
    res = await scanner.scan()
    assert sorted(sent.take()) == [
        ("delete", "user_00007"), ("upsert", "user_00042"), ("upsert", "user_99999"),
    ]  # fmt: skip
    assert (res.upserts, res.deletes) == (2, 1)
    # a restarted scanner (new process, same Redis state) publishes nothing
    again = await _scanner(client, redis_prefix, JsonDirStore("users", d), sent)
    assert (await again.scan()).upserts == 0
    assert sent.take() == []
    await client.aclose()


async def test_one_changed_record_in_a_20mb_json_file(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    path = tmp_path / "personalities.json"
    data = {f"p{i:05d}": {"name": f"P{i}", "prompt": "x" * 920, "n": i} for i in range(21_000)}
    path.write_bytes(orjson.dumps(data))
    assert path.stat().st_size > 20_000_000
    client = aredis.Redis.from_url(redis_url)
    sent = Sent()
    scanner = await _scanner(client, redis_prefix, JsonFileStore("personalities", path), sent)
    assert (await scanner.scan()).upserts == 21_000
    sent.take()
    data["p12345"]["n"] = -1  # one byte's worth of change, the file rewritten whole
    del data["p00003"]
    path.write_bytes(orjson.dumps(data))
    res = await scanner.scan()
    assert sorted(sent.take()) == [("delete", "p00003"), ("upsert", "p12345")]
    assert res.unchanged == 20_998
    assert (await scanner.scan()).upserts == 0
    assert sent.take() == []
    await client.aclose()


async def test_a_file_rewritten_during_the_scan_is_read_again(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """The app rewrites a file in place while the scanner reads it: the scanner publishes
    a whole version (never a torn one), and the final version once the writer stops."""
    d = tmp_path / "sessions"
    d.mkdir()
    path = d / "chat.json"
    versions = [orjson.dumps({"v": i, "messages": ["m" * 50] * (i % 40)}) for i in range(200)]
    path.write_bytes(versions[0])
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            data = versions[i % len(versions)]
            with path.open("r+b") as fh:
                fh.truncate(0)
                fh.write(data[:10])
                fh.flush()
                time.sleep(0.0003)
                fh.write(data[10:])
            i += 1

    client = aredis.Redis.from_url(redis_url)
    sent = Sent()
    scanner = await _scanner(client, redis_prefix, JsonDirStore("sessions", d), sent)
    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(15):
            await scanner.scan()
    finally:
        stop.set()
        t.join()
    for e in sent.events:
        assert orjson.dumps(e.payload) in versions
    path.write_bytes(orjson.dumps({"v": "final"}))
    sent.events.clear()
    await scanner.scan()
    assert [e.payload for e in sent.events] == [{"v": "final"}]
    await client.aclose()


async def test_json_lines_publish_new_lines_as_they_are_appended(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    logs = tmp_path / "api" / "logs"
    logs.mkdir(parents=True)
    f = logs / "app.log"
    f.write_bytes(b'{"n": 1}\n{"n": 2}\nbroken\n{"n": 4, "half')
    client = aredis.Redis.from_url(redis_url)
    sent = Sent()
    store = JsonLinesStore("system_logs", tmp_path, "api/logs/*.log")
    scanner = await _scanner(client, redis_prefix, store, sent)
    res = await scanner.scan()
    assert sent.take() == [("upsert", "app.log:1"), ("upsert", "app.log:2")]
    assert "app.log:3" in res.skipped
    with f.open("ab") as fh:
        fh.write(b'": true}\n{"n": 5}\n')
    await scanner.scan()
    assert sent.take() == [("upsert", "app.log:4"), ("upsert", "app.log:5")]
    await scanner.scan()
    assert sent.take() == []
    # the keys agree with the adapter's, so the verifier reads the same records
    rec = await store.get("app.log:4")
    assert rec is not None
    assert rec.doc == {"n": 4, "half": True}
    await client.aclose()


async def test_app_versions_and_deletes_after_them(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "a.json").write_bytes(orjson.dumps({"rev": 7}))
    (d / "b.json").write_bytes(orjson.dumps({"no": "version"}))
    client = aredis.Redis.from_url(redis_url)
    sent = Sent()

    def rev(doc: dict[str, Any]) -> int | None:
        v = doc.get("rev")
        return v if isinstance(v, int) else None

    store = JsonDirStore("docs", d, version_of=rev)
    scanner = await _scanner(client, redis_prefix, store, sent, app_versions=True)
    res = await scanner.scan()
    assert [(e.key, e.version) for e in sent.events] == [("a", 7)]
    assert "b" in res.skipped  # no version: reported, not published with a clock version
    sent.events.clear()
    (d / "a.json").unlink()
    await scanner.scan()
    assert [(str(e.op), e.key, e.version) for e in sent.events] == [("delete", "a", 8)]
    await client.aclose()


async def test_scan_through_a_real_publisher(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    d = tmp_path / "memory"
    d.mkdir()
    for i in range(50):
        (d / f"k{i}.json").write_bytes(orjson.dumps({"i": i}))
    client = aredis.Redis.from_url(redis_url)
    async with Publisher(client, source="scan", prefix=redis_prefix, shards=2) as pub:
        scanner = Scanner(
            JsonDirStore("users", d), ScanState(client, redis_prefix, "users"), pub.publish_many
        )
        await scanner.scan()
    total = sum([await client.xlen(s) for s in stream_keys(redis_prefix, 2)])
    assert total == 50
    await client.aclose()
