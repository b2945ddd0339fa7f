"""Spool durability and hygiene: directory fsyncs, torn tails, corrupt lines, Redis errors.

A spool entry is only durable once its file's directory entry is: the directory is
fsynced after a spool file is created and after the position file is renamed into place.
A torn tail (a crash mid-append, which never returned) is not an event: it must not keep
a drained file alive, nor make the next publisher start in spooling mode. A corrupt line
is moved aside, and a Redis error during the drain is retried; the drain never dies.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aredis
from structlog.testing import capture_logs

from dualsync.producers import Publisher, Spool, stream_key

TORN = b'["s:events:{0}",{"event_id":"torn"'


def _line(stream: str, event_id: str, **extra: str) -> bytes:
    return orjson.dumps([stream, {"event_id": event_id, **extra}]) + b"\n"


def _orphan(directory: Path, *chunks: bytes) -> Path:
    """A spool file as a dead process leaves it (no flock held)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "spool-1-0190a000-0000-7000-8000-000000000000.jsonl"
    path.write_bytes(b"".join(chunks))
    return path


def _record_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, int]]:
    """(is a directory, inode) of every fsync from now on; the real fsync still runs."""
    real = os.fsync
    calls: list[tuple[bool, int]] = []

    def recording(fd: int) -> None:
        st = os.fstat(fd)
        calls.append((stat.S_ISDIR(st.st_mode), st.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return calls


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


# --- defect 9: directory fsyncs -----------------------------------------------------------


def test_a_new_spool_file_is_fsynced_into_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory)
    calls = _record_fsyncs(monkeypatch)
    spool.append([("s:events:{0}", {"event_id": "a"})])
    dir_ino = directory.stat().st_ino
    assert (True, dir_ino) in calls, "the new file's directory entry was never fsynced"
    calls.clear()
    spool.append([("s:events:{0}", {"event_id": "b"})])
    assert (True, dir_ino) not in calls, "later appends to the same file need no dir fsync"
    spool.close()


def test_the_position_commit_fsyncs_the_directory_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "spool"
    spool = Spool(directory)
    spool.append([("s:events:{0}", {"event_id": "a"}), ("s:events:{0}", {"event_id": "b"})])
    dir_ino = directory.stat().st_ino
    nxt = spool.next_chunk(1)
    assert nxt is not None
    f, chunk = nxt
    calls = _record_fsyncs(monkeypatch)
    spool.commit(f, chunk[-1].end)
    assert calls, "the position was not fsynced at all"
    assert calls[-1] == (True, dir_ino), "no directory fsync after the .pos rename"
    assert any(not is_dir for is_dir, _ in calls[:-1]), "the position file itself is fsynced"
    assert int(f.pos_path.read_text()) == chunk[-1].end
    calls.clear()
    nxt = spool.next_chunk(10)
    assert nxt is not None
    spool.commit(nxt[0], nxt[1][-1].end)  # fully drained: the file is removed
    assert (True, dir_ino) in calls, "no directory fsync after removing the drained file"
    assert not list(directory.glob("spool-*"))
    spool.close()


# --- defect 10: torn tails ----------------------------------------------------------------


async def test_a_drained_file_with_a_torn_tail_is_removed(
    redis_client: aredis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    directory = tmp_path / "spool"
    s = stream_key(redis_prefix, 0)
    _orphan(directory, _line(s, "a"), _line(s, "b"), TORN)
    pub = Publisher(redis_client, source="app", prefix=redis_prefix, shards=1, spool_dir=directory)
    assert pub.spooling
    await pub.flush()
    await pub.aclose()
    assert await redis_client.xlen(s) == 2
    assert not list(directory.glob("spool-*")), "the drained file (and its .pos) stay behind"
    successor = Publisher(
        redis_client, source="app", prefix=redis_prefix, shards=1, spool_dir=directory
    )
    assert not successor.spooling
    first = await successor.publish("users", "1", payload={"a": 1})
    assert not first.spooled, "a later publisher starts in spooling mode because of the tail"
    await successor.aclose()


async def test_a_torn_tail_alone_is_not_pending(
    redis_client: aredis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    directory = tmp_path / "spool"
    _orphan(directory, TORN)
    probe = Spool(directory)
    probe.adopt_orphans()
    assert not probe.pending()
    probe.close()
    pub = Publisher(redis_client, source="app", prefix=redis_prefix, shards=1, spool_dir=directory)
    assert not pub.spooling
    assert not (await pub.publish("users", "1", payload={"a": 1})).spooled
    await pub.aclose()
    assert not list(directory.glob("spool-*.jsonl"))


def test_a_failed_append_leaves_no_torn_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path)
    spool.append([("s:events:{0}", {"event_id": "a"})])
    real = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        spool.append([("s:events:{0}", {"event_id": "lost"})])
    monkeypatch.setattr(os, "fsync", real)
    spool.append([("s:events:{0}", {"event_id": "b"})])
    nxt = spool.next_chunk(10)
    assert nxt is not None
    assert [e.fields["event_id"] for e in nxt[1]] == ["a", "b"]
    spool.close()


# --- suspected a: corrupt lines and Redis errors never kill the drain ---------------------


async def test_a_corrupt_line_is_moved_aside_and_the_drain_continues(
    redis_client: aredis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    directory = tmp_path / "spool"
    s = stream_key(redis_prefix, 0)
    secret = b'{"password": "hunter2"'
    wrong_shape = b'[1, "x"]\n'
    orphan = _orphan(directory, _line(s, "a"), secret + b"\n", _line(s, "b"), wrong_shape)
    offset_of_secret = len(_line(s, "a"))
    pub = Publisher(
        redis_client,
        source="app",
        prefix=redis_prefix,
        shards=1,
        spool_dir=directory,
        retry_interval=0.01,
    )
    with capture_logs() as logs:
        await pub.publish("users", "1", payload={"c": 1})  # queued behind the orphan
        assert await _until(lambda: not pub.spooling), "the drain died on the corrupt line"
    await pub.aclose()
    entries = await redis_client.xrange(s)
    assert [f[b"event_id"] for _, f in entries[:2]] == [b"a", b"b"]
    assert len(entries) == 3
    bad = orphan.with_suffix(".bad")
    assert bad.read_bytes() == secret + b"\n" + wrong_shape
    corrupt = [e for e in logs if e["event"] == "spool_line_corrupt"]
    assert (corrupt[0]["file"], corrupt[0]["offset"]) == (orphan.name, offset_of_secret)
    assert len(corrupt) == 2
    assert "hunter2" not in repr(logs)


async def test_a_redis_error_during_the_drain_is_logged_and_retried(
    redis_client: aredis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    directory = tmp_path / "spool"
    bad_stream, good_stream = stream_key(redis_prefix, 0), stream_key(redis_prefix, 1)
    _orphan(
        directory,
        *[_line(bad_stream if i % 2 else good_stream, f"e{i}") for i in range(6)],
    )
    await redis_client.set(bad_stream, "not a stream")  # every XADD to it: WRONGTYPE
    pub = Publisher(
        redis_client,
        source="app",
        prefix=redis_prefix,
        shards=2,
        spool_dir=directory,
        retry_interval=0.01,
    )

    def failures() -> int:
        return sum(1 for e in logs if e["event"] == "spool_drain_failed")

    with capture_logs() as logs:
        await pub.publish("users", "1", "delete")  # queued behind the orphan
        assert await _until(lambda: failures() >= 3), "the drain died on a ResponseError"
        assert pub.spooling
        assert "WRONGTYPE" in next(e for e in logs if e["event"] == "spool_drain_failed")["error"]
        await redis_client.delete(bad_stream)
        assert await _until(lambda: not pub.spooling), "the drain did not resume"
    await pub.aclose()
    good = [f[b"event_id"] for _, f in await redis_client.xrange(good_stream)]
    bad = [f[b"event_id"] for _, f in await redis_client.xrange(bad_stream)]
    assert [x for x in good if x.startswith(b"e")] == [b"e0", b"e2", b"e4"], "no re-sends"
    assert bad[:3] == [b"e1", b"e3", b"e5"]
