"""XTRIM MINID never removes an entry that is still pending."""

from __future__ import annotations

import redis.asyncio as aredis

from dualsync.worker.trim import trim_streams


async def test_trim_keeps_pending_and_undelivered(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    s = f"{redis_prefix}:events:{{0}}"
    ids = [await redis_client.xadd(s, {"n": str(i)}) for i in range(100)]
    assert await trim_streams(redis_client, [s]) == 0, (
        "no group yet: nothing is known to be applied"
    )
    await redis_client.xgroup_create(s, "apply", id="0")
    resp = await redis_client.xreadgroup("apply", "c", {s: ">"}, count=60)
    delivered = [i for i, _ in resp[0][1]]
    await redis_client.xack(s, "apply", *delivered[:40])
    removed = await trim_streams(redis_client, [s])
    assert removed == 40
    remaining = [i for i, _ in await redis_client.xrange(s)]
    assert remaining == ids[40:]  # 20 pending + 40 never delivered
    await redis_client.xack(s, "apply", *delivered[40:])
    assert await trim_streams(redis_client, [s]) == 20
    assert [i for i, _ in await redis_client.xrange(s)] == ids[60:]
