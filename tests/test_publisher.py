"""Publisher SDK on a real Redis: routing, versions, reference events, signing, pipelining."""

from __future__ import annotations

import itertools
import zlib

import pytest
import redis.asyncio as aredis
from redis.exceptions import ResponseError

from dualsync.producers import EventSpec, HybridClock, Publisher, shard_for, stream_key, uuid7
from dualsync.schema import EnvelopeError, decode_fields


def test_shard_routing_is_crc32_of_entity_and_key() -> None:
    assert shard_for("users", "42", 8) == zlib.crc32(b"users\x1f42") % 8
    assert stream_key("dualsync", 3) == "dualsync:events:{3}"
    spread = {shard_for("users", str(i), 4) for i in range(200)}
    assert spread == {0, 1, 2, 3}


def test_hybrid_clock_is_strictly_increasing_and_observes() -> None:
    clock = HybridClock()
    seen = [clock.now() for _ in range(10_000)]
    assert all(b > a for a, b in itertools.pairwise(seen))
    clock.observe(seen[-1] + 10**12)
    assert clock.now() > seen[-1] + 10**12


def test_uuid7_sorts_by_time() -> None:
    ids = [uuid7() for _ in range(50)]
    assert len(set(ids)) == 50
    assert [i[:8] for i in ids] == sorted(i[:8] for i in ids)


async def test_publish_many_routes_and_versions(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    async with Publisher(redis_client, source="app", prefix=redis_prefix, shards=4) as pub:
        specs = [EventSpec("users", str(i), payload={"n": i}) for i in range(100)]
        specs.append(EventSpec("charts", "7", payload={"n": 700}, version=10**17))  # app domain
        out = await pub.publish_many(specs)
    assert len(out) == 101
    assert all(p.entry_id and not p.spooled for p in out)
    total = 0
    for shard in range(4):
        entries = await redis_client.xrange(stream_key(redis_prefix, shard))
        for _, fields in entries:
            ev = decode_fields(fields)
            assert shard_for(ev.entity, ev.key, 4) == shard
            total += 1
    assert total == 101
    assert out[-1].version == 10**17
    assert out[0].version < out[1].version  # HLC when the app gives none


async def test_oversized_payload_becomes_reference_event(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    pub = Publisher(
        redis_client, source="app", prefix=redis_prefix, shards=1, max_payload_bytes=1024
    )
    p = await pub.publish("users", "big", payload={"blob": "x" * 5000})
    await pub.aclose()
    assert p.ref
    [(_, fields)] = await redis_client.xrange(p.stream)
    ev = decode_fields(fields)
    assert ev.ref
    assert ev.payload is None


async def test_signed_events_verify(redis_client: aredis.Redis, redis_prefix: str) -> None:
    key = b"s3cret-key-for-app"
    pub = Publisher(redis_client, source="app", prefix=redis_prefix, shards=1, sign_key=key)
    p = await pub.publish("users", "1", payload={"a": 1})
    await pub.aclose()
    [(_, fields)] = await redis_client.xrange(p.stream)
    assert decode_fields(fields, signing_keys={"app": key}, require_signature=True).sig


async def test_bad_input_is_refused_before_sending(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    pub = Publisher(redis_client, source="app", prefix=redis_prefix, shards=1)
    with pytest.raises(EnvelopeError, match="entity"):
        await pub.publish("Users!", "1", payload={})
    with pytest.raises(EnvelopeError, match="key"):
        await pub.publish("users", "a\x00", payload={})
    with pytest.raises(EnvelopeError, match="payload"):
        await pub.publish("users", "1")
    with pytest.raises(EnvelopeError, match="merge"):  # an EnvelopeError (field op) now
        await pub.publish("users", "1", op="merge", payload={})
    await pub.aclose()
    assert await redis_client.exists(stream_key(redis_prefix, 0)) == 0


async def test_a_redis_error_on_publish_does_not_quote_the_payload(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    await redis_client.set(stream_key(redis_prefix, 0), "not a stream")
    pub = Publisher(redis_client, source="app", prefix=redis_prefix, shards=1)
    with pytest.raises(ResponseError, match="WRONGTYPE") as info:
        await pub.publish("users", "1", payload={"password": "hunter2"})
    await pub.aclose()
    assert "hunter2" not in str(info.value)
