"""Publisher lifecycle: adopted orphans drain on their own; close is bounded; SyncPublisher.

A spool left by a dead process must not wait for the successor's first publish (an idle
successor would hold it forever). `close()` must return even when Redis accepts the
connection and never answers (no socket timeout): the undrained entries stay in the spool
for the next publisher.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import orjson
import pytest
import redis
import redis.asyncio as aredis
import structlog
from structlog.testing import capture_logs

from dualsync.errors import ConfigError
from dualsync.ops.embedded import EmbeddedRedis, free_port
from dualsync.producers import Publisher, Spool, SyncPublisher, stream_key
from dualsync.producers.sync_publisher import async_client_like


def _orphan(directory: Path, stream: str, n: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = b"".join(orjson.dumps([stream, {"event_id": f"o{i}"}]) + b"\n" for i in range(n))
    (directory / "spool-1-0190a000-0000-7000-8000-000000000001.jsonl").write_bytes(lines)


def _spooled(directory: Path) -> int:
    probe = Spool(directory)
    probe.adopt_orphans()
    n = probe.count()
    probe.close()
    return n


async def _until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def _until_sync(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(data_dir=tmp_path / "redis")
    server.start()
    yield server
    server.close()


# --- suspected b: adopted orphans drain without waiting for a publish ----------------------


async def test_adopted_orphans_drain_on_enter_without_a_publish(
    redis_client: aredis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    directory = tmp_path / "spool"
    s = stream_key(redis_prefix, 0)
    _orphan(directory, s, 700)
    async with Publisher(
        redis_client, source="app", prefix=redis_prefix, shards=1, spool_dir=directory
    ) as pub:
        assert await _until(lambda: not pub.spooling), "orphans wait for a publish"
    assert await redis_client.xlen(s) == 700
    assert not list(directory.glob("spool-*.jsonl"))


def test_sync_publisher_drains_adopted_orphans_on_its_own(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    directory = tmp_path / "spool"
    s = stream_key(redis_prefix, 0)
    _orphan(directory, s, 50)
    client = redis.Redis.from_url(redis_url)
    pub = SyncPublisher(client, source="app", prefix=redis_prefix, shards=1, spool_dir=directory)
    try:
        assert _until_sync(lambda: not pub.spooling), "orphans wait for a publish"
        assert client.xlen(s) == 50
    finally:
        pub.close()
        client.close()


# --- suspected c: close is bounded when Redis hangs ---------------------------------------


def test_sync_close_returns_while_redis_never_answers(
    own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    directory = tmp_path / "spool"
    _orphan(directory, "hang:events:{0}", 20)
    admin = redis.Redis.from_url(own_redis.url)
    client = redis.Redis.from_url(own_redis.url)  # no socket timeout at all
    admin.client_pause(60_000, all=False)  # writes (XADD) block; PING still answers
    closer: threading.Thread | None = None
    try:
        pub = SyncPublisher(
            client,
            source="app",
            prefix="hang",
            shards=1,
            spool_dir=directory,
            retry_interval=3600,
            close_timeout=0.5,
        )
        closer = threading.Thread(target=pub.close, daemon=True)
        closer.start()
        closer.join(15)
        assert not closer.is_alive(), "close() is stuck inside an XADD"
        assert _spooled(directory) == 20, "undrained entries stay for the next publisher"
    finally:
        admin.client_unpause()
        if closer is not None:
            closer.join(15)
        admin.close()
        client.close()


async def test_async_close_returns_while_redis_never_answers(
    own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    directory = tmp_path / "spool"
    _orphan(directory, "hang:events:{0}", 20)
    admin = aredis.Redis.from_url(own_redis.url)
    client = aredis.Redis.from_url(own_redis.url)
    await admin.client_pause(60_000, all=False)
    try:
        pub = Publisher(
            client,
            source="app",
            prefix="hang",
            shards=1,
            spool_dir=directory,
            retry_interval=3600,
            close_timeout=0.5,
        )
        await pub.publish("users", "1", payload={"a": 1})  # queued behind the orphan
        await asyncio.wait_for(pub.aclose(), 15)
        assert _spooled(directory) == 21
    finally:
        await admin.client_unpause()
        await admin.aclose()
        await client.aclose()


# --- SyncPublisher as a wrapper over Publisher --------------------------------------------


def test_sync_publisher_logs_carry_the_callers_context(tmp_path: Path) -> None:
    down = redis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    pub = SyncPublisher(down, source="app", shards=1, spool_dir=tmp_path, retry_interval=3600)
    with (
        capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs,
        structlog.contextvars.bound_contextvars(request_id="r-1"),
    ):
        assert pub.publish("users", "1", payload={"a": 1}).spooled
    pub.close()
    down.close()
    [spooling] = [e for e in logs if e["event"] == "redis_unreachable_spooling"]
    assert spooling["request_id"] == "r-1"


def test_sync_publisher_keeps_working_in_a_forked_child(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    pub = SyncPublisher(client, source="app", prefix=redis_prefix, shards=1)
    pub.publish("users", "parent", payload={"a": 1})
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            code = 0 if pub.publish("users", "child", payload={"a": 1}).entry_id else 1
            pub.close()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    pub.publish("users", "parent2", payload={"a": 1})
    pub.close()
    entries = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(stream_key(redis_prefix, 0))
    )
    keys = [f[b"key"] for _, f in entries]
    client.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(keys) == [b"child", b"parent", b"parent2"]


def test_the_async_twin_keeps_the_sync_clients_connection_settings() -> None:
    tls = redis.Redis.from_url(
        "rediss://u:p@cache.example:6380/2?ssl_cert_reqs=none", socket_timeout=3
    )
    twin = async_client_like(tls)
    pool = twin.connection_pool
    assert pool.connection_class is aredis.SSLConnection
    kw = pool.connection_kwargs
    assert (kw["host"], kw["port"], kw["db"], kw["username"], kw["password"]) == (
        "cache.example", 6380, 2, "u", "p",
    )  # fmt: skip
    assert (kw["ssl_cert_reqs"], kw["socket_timeout"]) == ("none", 3)
    unix = async_client_like(redis.Redis(unix_socket_path="/run/redis.sock", db=1))
    assert unix.connection_pool.connection_class is aredis.UnixDomainSocketConnection
    assert unix.connection_pool.connection_kwargs["path"] == "/run/redis.sock"


def test_settings_the_async_twin_cannot_honour_are_refused() -> None:
    locked = redis.Redis(host="h", ssl=True, ssl_password="key-passphrase")
    with pytest.raises(ConfigError, match="ssl_password"):
        async_client_like(locked)
    sentinel = redis.Redis(connection_pool=redis.ConnectionPool(connection_class=_OddConnection))
    with pytest.raises(ConfigError, match="_OddConnection"):
        async_client_like(sentinel)


class _OddConnection(redis.Connection):
    """Stands in for Sentinel-managed or other custom connection classes."""
