"""Pending recovery: XAUTOCLAIM on the real server, and both reply shapes (6.2 and 7.x)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aredis

from dualsync.worker.reclaim import reclaim_idle, split_autoclaim


def test_split_autoclaim_handles_both_reply_shapes() -> None:
    six = [b"0-0", [(b"1-0", {b"a": b"1"}), (b"2-0", None)]]
    seven = [b"5-0", [(b"1-0", {b"a": b"1"})], [b"3-0", b"4-0"]]
    assert split_autoclaim(six) == ("0-0", [(b"1-0", {b"a": b"1"}), (b"2-0", None)], [])
    assert split_autoclaim(seven) == ("5-0", [(b"1-0", {b"a": b"1"})], ["3-0", "4-0"])


async def test_reclaim_takes_idle_entries_with_delivery_counts(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    s = f"{redis_prefix}:events:{{0}}"
    await redis_client.xgroup_create(s, "apply", id="0", mkstream=True)
    for i in range(10):
        await redis_client.xadd(s, {"n": str(i)})
    await redis_client.xreadgroup("apply", "dead", {s: ">"}, count=10)
    assert await reclaim_idle(redis_client, [s], "apply", "alive", 10_000, 100) == []
    await asyncio.sleep(0.15)
    got = await reclaim_idle(redis_client, [s], "apply", "alive", 100, 100)
    assert [e.fields[b"n"] for e in got] == [str(i).encode() for i in range(10)]
    assert all(e.deliveries == 2 for e in got)
    consumers = {c["name"]: c["pending"] for c in await redis_client.xinfo_consumers(s, "apply")}
    assert consumers[b"alive" if b"alive" in consumers else "alive"] == 10


async def test_reclaim_acks_entries_trimmed_while_pending(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    s = f"{redis_prefix}:events:{{0}}"
    await redis_client.xgroup_create(s, "apply", id="0", mkstream=True)
    ids = [await redis_client.xadd(s, {"n": str(i)}) for i in range(3)]
    await redis_client.xreadgroup("apply", "dead", {s: ">"}, count=3)
    await redis_client.xdel(s, ids[1])
    await asyncio.sleep(0.05)
    got = await reclaim_idle(redis_client, [s], "apply", "alive", 10, 100)
    assert [e.fields[b"n"] for e in got] == [b"0", b"2"]
    pending = await redis_client.xpending(s, "apply")
    assert pending["pending"] == 2  # the deleted one is no longer pending on 6.2 or 7.x


async def test_reclaimed_delivery_counts_are_exact_among_interleaved_consumers(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    """A dead consumer's entries interleave with live consumers' in the PEL: the counts of
    the reclaimed ones come from XPENDING per id, not from a window over the id range."""
    s = f"{redis_prefix}:events:{{0}}"
    await redis_client.xgroup_create(s, "apply", id="0", mkstream=True)
    dead: list[Any] = []  # entry ids (Any: redis-py's stubs take a list of an id union)
    live: dict[str, list[Any]] = {"b": [], "c": []}
    for i in range(60):
        dead.append(await _add_and_read(redis_client, s, "dead", i))
        for j in range(3):  # six live entries per dead one, spread over two consumers
            for name, ids in live.items():
                ids.append(await _add_and_read(redis_client, s, name, i * 10 + j))
    # The dead consumer's entries are poison: delivered three times already.
    for _ in range(2):
        await redis_client.xclaim(s, "apply", "dead", 0, dead)
    await asyncio.sleep(0.15)
    for name, ids in live.items():  # live consumers keep theirs busy (idle time reset)
        await redis_client.xclaim(s, "apply", name, 0, ids, justid=True)

    got = await reclaim_idle(redis_client, [s], "apply", "alive", 100, 1000)

    assert [e.id for e in got] == dead
    assert {e.id: e.deliveries for e in got} == dict.fromkeys(dead, 4)
    rows = await redis_client.xpending_range(s, "apply", "-", "+", 1000, consumername="alive")
    assert {r["message_id"].decode(): r["times_delivered"] for r in rows} == dict.fromkeys(dead, 4)


async def _add_and_read(client: aredis.Redis, stream: str, consumer: str, n: int) -> str:
    entry_id = await client.xadd(stream, {"n": str(n)})
    await client.xreadgroup("apply", consumer, {stream: ">"}, count=1)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
