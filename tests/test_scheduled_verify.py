"""The worker's scheduled verify: one at a time across workers, due every N seconds, and a
lock that a crashed run does not hold forever."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aredis

from dualsync.schema.streams import verify_last_key, verify_lock_key
from dualsync.worker.config import WorkerConfig
from dualsync.worker.context import CTX_KEY, StartOptions, WorkerContext
from dualsync.worker.settings import verify
from dualsync.worker.singleton import singleton


async def test_one_holder_at_a_time_and_a_crashed_holder_expires(
    redis_url: str, redis_prefix: str
) -> None:
    client = aredis.Redis.from_url(redis_url)
    key = f"{redis_prefix}:lock"
    async with singleton(client, key, 600) as first:
        assert first
        async with singleton(client, key, 600) as second:
            assert not second
        await asyncio.sleep(0.5)  # past the first lease: it was renewed
        async with singleton(client, key, 600) as third:
            assert not third
    async with singleton(client, key, 600) as after:
        assert after  # released
    await client.set(key, "a crashed holder", px=200)  # nobody renews it
    await asyncio.sleep(0.3)
    async with singleton(client, key, 600) as revived:
        assert revived
    await client.aclose()


def _ctx(client: aredis.Redis, prefix: str, job: Any, every: float) -> dict[str, Any]:
    opts = StartOptions(WorkerConfig(prefix=prefix), "", "", verify_job=job, verify_every_s=every)
    wctx = WorkerContext(opts, None, client, [], None)  # type: ignore[arg-type]  # only redis is used
    return {CTX_KEY: wctx}


async def test_the_cron_runs_once_per_period_across_workers(
    redis_url: str, redis_prefix: str
) -> None:
    client = aredis.Redis.from_url(redis_url)
    calls = 0

    async def job() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.3)
        return "users: 0 drift of 10"

    a, b = _ctx(client, redis_prefix, job, 60), _ctx(client, redis_prefix, job, 60)
    results = await asyncio.gather(verify(a), verify(b))
    assert calls == 1
    assert sorted(results) == sorted(["users: 0 drift of 10", "another worker is verifying"]) or (
        "not due" in results
    )
    assert await verify(a) == "not due"
    await client.set(verify_last_key(redis_prefix), str(time.time() - 61))
    assert await verify(b) == "users: 0 drift of 10"
    assert calls == 2
    assert not await client.exists(verify_lock_key(redis_prefix))
    assert await verify(_ctx(client, redis_prefix, None, 60)) == "off"
    await client.aclose()
