"""One version domain per entity: app-supplied versions and clock versions never mix.

The README's old pattern (counter versions for upserts, `publish(..., "delete")` without
one) gave the delete an HLC µs version (~1.7e15) that no later counter could beat: a
re-created key stayed deleted forever, silently. Now the mix raises at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis

from dualsync.ops.embedded import free_port
from dualsync.producers import (
    EventSpec,
    Publisher,
    Spool,
    SyncPublisher,
    VersionDomainError,
    stream_key,
)
from dualsync.schema import EnvelopeError

APP_MSG = (
    "entity 'users' takes versions from the app (counter/updatedAt); pass version= for its "
    "deletes too (e.g. the counter + 1 or the deletion time in µs), or never pass versions for it"
)


async def test_counter_upserts_then_unversioned_delete_raises_before_sending(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    async with Publisher(redis_client, source="app", prefix=redis_prefix, shards=1) as pub:
        await pub.publish("users", "1", "upsert", {"n": 1}, version=1)
        with pytest.raises(VersionDomainError) as info:
            await pub.publish("users", "1", "delete")
        assert APP_MSG in str(info.value)
        assert isinstance(info.value, EnvelopeError)
        # the versioned delete the message asks for is accepted, and so is the re-creation
        await pub.publish("users", "1", "delete", version=2)
        await pub.publish("users", "1", "upsert", {"n": 3}, version=3)
    assert await redis_client.xlen(stream_key(redis_prefix, 0)) == 3


async def test_clock_entity_refuses_an_app_version(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    async with Publisher(redis_client, source="app", prefix=redis_prefix, shards=1) as pub:
        await pub.publish("charts", "1", payload={"a": 1})
        with pytest.raises(VersionDomainError, match="'charts' takes versions from the"):
            await pub.publish("charts", "1", "delete", version=7)
        await pub.publish("charts", "1", "delete")
    assert await redis_client.xlen(stream_key(redis_prefix, 0)) == 2


async def test_app_versions_declared_upfront_refuse_an_unversioned_first_event(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    pub = Publisher(
        redis_client, source="app", prefix=redis_prefix, shards=1, app_versions=["users"]
    )
    with pytest.raises(VersionDomainError, match="takes versions from the app"):
        await pub.publish("users", "1", "delete")
    with pytest.raises(VersionDomainError, match="for its upserts too"):
        await pub.publish("users", "1", payload={"a": 1})
    await pub.publish("users", "1", payload={"a": 1}, version=5)
    await pub.publish("charts", "1", payload={"a": 1})  # other entities are unaffected
    await pub.aclose()
    assert await redis_client.xlen(stream_key(redis_prefix, 0)) == 2


def test_app_versions_must_be_a_collection_of_names(redis_url: str) -> None:
    client = aredis.Redis.from_url(redis_url)
    with pytest.raises(TypeError, match="app_versions must be a collection"):
        Publisher(client, source="app", app_versions="users")


async def test_a_mixed_batch_is_refused_whole_and_not_remembered(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    async with Publisher(redis_client, source="app", prefix=redis_prefix, shards=1) as pub:
        batch = [
            EventSpec("users", "1", payload={"a": 1}, version=1),
            EventSpec("users", "2", "delete"),
        ]
        with pytest.raises(VersionDomainError):
            await pub.publish_many(batch)
        assert await redis_client.exists(stream_key(redis_prefix, 0)) == 0
        # nothing was sent, so the refused batch did not pin a domain for "users"
        out = await pub.publish("users", "3", payload={"a": 1})
        assert out.entry_id is not None


async def test_domains_are_checked_before_spooling(tmp_path: Path) -> None:
    down = aredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    spool_dir = tmp_path / "spool"
    pub = Publisher(down, source="app", shards=1, spool_dir=spool_dir, retry_interval=3600)
    first = await pub.publish("users", "1", payload={"a": 1}, version=1)
    assert first.spooled
    with pytest.raises(VersionDomainError):
        await pub.publish("users", "1", "delete")
    await pub.aclose()
    await down.aclose()
    probe = Spool(spool_dir)
    probe.adopt_orphans()
    assert probe.count() == 1
    probe.close()


async def test_app_versions_do_not_push_the_clock_of_other_entities(
    redis_client: aredis.Redis, redis_prefix: str
) -> None:
    async with Publisher(redis_client, source="app", prefix=redis_prefix, shards=1) as pub:
        await pub.publish("users", "1", payload={"a": 1}, version=10**17)
        clocked = await pub.publish("charts", "1", payload={"a": 1})
    assert clocked.version < 10**17


def test_sync_publisher_keeps_the_same_rule(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with SyncPublisher(
        client, source="app", prefix=redis_prefix, shards=1, app_versions=("users",)
    ) as pub:
        with pytest.raises(VersionDomainError, match="takes versions from the app"):
            pub.publish("users", "1", "delete")
        pub.publish("charts", "1", payload={"a": 1})
        with pytest.raises(VersionDomainError, match="'charts' takes versions from the"):
            pub.publish("charts", "1", "delete", version=3)
    client.close()
