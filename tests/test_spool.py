"""Redis outage: events spool locally (fsynced) and drain in order, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import cast

import redis
import redis.asyncio as aredis

from dualsync.ops.embedded import EmbeddedRedis
from dualsync.producers import EventSpec, Publisher, Spool, SyncPublisher, stream_keys
from dualsync.schema import decode_fields

TOTAL = 10_000
KEYS = 50


def _read_all(url: str, prefix: str, shards: int) -> list[tuple[str, str, int]]:
    client = redis.Redis.from_url(url)
    out = []
    for stream in stream_keys(prefix, shards):
        for _, fields in cast("list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(stream)):
            ev = decode_fields(fields)
            out.append((ev.event_id, ev.key, ev.version))
    client.close()
    return out


def _check_exactly_once_in_order(seen: list[tuple[str, str, int]], published: list[str]) -> None:
    ids = [e for e, _, _ in seen]
    assert len(ids) == TOTAL
    assert set(ids) == set(published)
    assert len(set(ids)) == TOTAL
    per_key: dict[str, list[int]] = defaultdict(list)
    for _, key, version in seen:
        per_key[key].append(version)
    for versions in per_key.values():
        assert versions == sorted(versions), "per-key order broken"


async def test_outage_mid_run_loses_nothing(tmp_path: Path) -> None:
    server = EmbeddedRedis(appendonly=True, data_dir=tmp_path / "redis")
    server.start()
    client = aredis.Redis.from_url(server.url, socket_connect_timeout=1)
    pub = Publisher(
        client,
        source="app",
        prefix="sp",
        shards=4,
        spool_dir=tmp_path / "spool",
        retry_interval=0.05,
    )
    published: list[str] = []
    try:
        for i in range(TOTAL):
            if i == 3_000:
                server.stop()
            if i == 8_000:
                assert pub.spooling
                server.start()
            if i % 100 == 0:  # a mix of single and pipelined publishes
                batch = [
                    EventSpec("users", f"k{(i + j) % KEYS}", payload={"i": i + j})
                    for j in range(50)
                ]
                out = await pub.publish_many(batch)
                published += [p.event_id for p in out]
            elif i % 100 >= 50:
                p = await pub.publish("users", f"k{i % KEYS}", payload={"i": i})
                published.append(p.event_id)
        assert len(published) == TOTAL
        for _ in range(200):
            if not pub.spooling:
                break
            await asyncio.sleep(0.05)
        assert not pub.spooling
        await pub.aclose()
        _check_exactly_once_in_order(_read_all(server.url, "sp", 4), published)
        assert not list((tmp_path / "spool").glob("spool-*.jsonl")), (
            "drained spool files are removed"
        )
    finally:
        await client.aclose()
        server.close()


def test_sync_publisher_outage_and_orphan_adoption(tmp_path: Path) -> None:
    server = EmbeddedRedis(appendonly=True, data_dir=tmp_path / "redis")
    server.start()
    spool_dir = tmp_path / "spool"
    client = redis.Redis.from_url(server.url, socket_connect_timeout=1)
    published: list[str] = []
    try:
        pub = SyncPublisher(
            client, source="app", prefix="ss", shards=4, spool_dir=spool_dir, retry_interval=3600
        )
        published += [
            pub.publish("users", f"k{i % KEYS}", payload={"i": i}).event_id for i in range(4_000)
        ]
        server.stop()
        published += [
            pub.publish("users", f"k{i % KEYS}", payload={"i": i}).event_id
            for i in range(4_000, 5_000)
        ]
        out = pub.publish_many(
            [EventSpec("users", f"k{i % KEYS}", payload={"i": i}) for i in range(5_000, TOTAL)]
        )
        published += [p.event_id for p in out]
        assert all(p.spooled for p in out)
        # Closed while Redis is down (as a dying process would): the spool stays undrained.
        pub.close()
        probe = Spool(spool_dir)
        assert probe.adopt_orphans() == 1  # left for the next publisher
        assert probe.count() == TOTAL - 4_000
        probe.close()
        server.start()
        successor = SyncPublisher(client, source="app", prefix="ss", shards=4, spool_dir=spool_dir)
        # The adopted spool drains on its own, without waiting for a publish or a flush().
        deadline = time.monotonic() + 30
        while successor.spooling and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not successor.spooling
        assert successor.flush() == 0
        successor.close()
        _check_exactly_once_in_order(_read_all(server.url, "ss", 4), published)
    finally:
        client.close()
        server.close()


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append([("s:events:{0}", {"event_id": "a"}), ("s:events:{0}", {"event_id": "b"})])
    own = spool._own
    assert own is not None
    own.fh.write(b'["s:events:{0}", {"event_id": "c"')  # crash mid-write: no newline
    own.fh.flush()
    nxt = spool.next_chunk(10)
    assert nxt is not None
    assert [e.fields["event_id"] for e in nxt[1]] == ["a", "b"]
    spool.close()
