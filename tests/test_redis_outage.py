"""A real `dualsync worker` (under arq) against a Redis that goes away: a short outage is
ridden out with nothing lost; a long one stops the worker loudly, never silently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aredis

from dualsync.ops.embedded import EmbeddedRedis
from dualsync.producers import Publisher
from tests.fix_shop import Shop, customer, spec


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own (AOF on, so a restart keeps the streams)."""
    server = EmbeddedRedis(appendonly=True, data_dir=tmp_path / "redis")
    server.start()
    yield server
    server.close()


async def _publish(url: str, shop: Shop, first: int, n: int) -> None:
    client = aredis.Redis.from_url(url)
    pub = Publisher(client, source="shop", prefix=shop.prefix, shards=shop.shards)
    await pub.publish_many(
        [spec("customers", f"c{i}", customer(i), 1) for i in range(first, first + n)]
    )
    await pub.aclose()
    await client.aclose()


async def _wait_count(shop: Shop, n: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    got = 0
    while time.monotonic() < deadline:
        [(got,)] = await shop.rows("select count(*) from shop.customers")
        if got >= n:
            break
        await asyncio.sleep(0.1)
    return int(got)


async def test_short_outage_is_ridden_out(
    shop: Shop, own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    await _publish(own_redis.url, shop, 0, 100)
    proc = shop.worker_process(log, "--redis-outage-s", "30", redis_url=own_redis.url)
    try:
        assert await _wait_count(shop, 100, 60) == 100
        own_redis.stop()
        await asyncio.sleep(2)
        own_redis.start()
        await _publish(own_redis.url, shop, 100, 100)
        assert await _wait_count(shop, 200, 60) == 200, log.read_text()[-3000:]
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(30)


async def test_long_outage_stops_the_worker_loudly(
    shop: Shop, own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    await _publish(own_redis.url, shop, 0, 50)
    proc = shop.worker_process(log, "--redis-outage-s", "2", redis_url=own_redis.url)
    try:
        assert await _wait_count(shop, 50, 60) == 50
        own_redis.stop()
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    out = log.read_text()
    assert code != 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("dualsync: error:"), out[-3000:]
    assert "Redis" in last
    assert "Traceback" not in out, out[out.find("Traceback") - 300 :][:3000]


async def test_a_worker_started_while_redis_is_away_waits_for_it(
    shop: Shop, own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    own_redis.stop()
    proc = shop.worker_process(log, "--redis-outage-s", "30", redis_url=own_redis.url)
    try:
        await asyncio.sleep(3)
        assert proc.poll() is None, log.read_text()[-3000:]
        own_redis.start()
        await _publish(own_redis.url, shop, 0, 50)
        assert await _wait_count(shop, 50, 60) == 50, log.read_text()[-3000:]
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        proc.terminate()
        proc.wait(30)
