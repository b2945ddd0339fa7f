"""`group_lag`: what the backfill's back-pressure and parent barrier wait on."""

from __future__ import annotations

import redis.asyncio as aredis

from dualsync.producers.backfill import group_lag
from dualsync.schema.streams import stream_key


async def test_lag_counts_pending_and_undelivered_only(redis_url: str, redis_prefix: str) -> None:
    client = aredis.Redis.from_url(redis_url)
    stream = stream_key(redis_prefix, 0)
    assert await group_lag(client, redis_prefix, 1, "apply") == 0  # no stream yet
    for i in range(10):
        await client.xadd(stream, {"n": str(i)})
    assert await group_lag(client, redis_prefix, 1, "apply") == 10  # no group: all of them
    await client.xgroup_create(stream, "apply", id="0")
    read = await client.xreadgroup("apply", "c", {stream: ">"}, count=4)
    ids = [i for _, entries in read for i, _ in entries]
    assert await group_lag(client, redis_prefix, 1, "apply") == 10  # 4 pending + 6 unread
    await client.xack(stream, "apply", *ids)
    assert await group_lag(client, redis_prefix, 1, "apply") == 6  # acked ones no longer count
    rest = await client.xreadgroup("apply", "c", {stream: ">"})
    await client.xack(stream, "apply", *[i for _, entries in rest for i, _ in entries])
    assert await client.xlen(stream) == 10  # still in the stream until trimmed ...
    assert await group_lag(client, redis_prefix, 1, "apply") == 0  # ... but applied
    await client.aclose()
