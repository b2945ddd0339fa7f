"""Read-path modes: the machine, the audit, and 20 clients following a flip within a second."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aredis

from dualsync.ops.cutover.modes import change_mode, current_mode
from dualsync.ops.embedded import EmbeddedRedis
from dualsync.producers.readpath import ReadPath
from dualsync.schema.migrate import Migrator, core_set
from dualsync.schema.readpath import IllegalTransitionError, Mode


@pytest.fixture
def db(pg_url: str) -> str:
    Migrator(pg_url, [core_set()]).up()
    return pg_url


async def test_the_machine_refuses_skips_and_audits_what_it_accepts(
    db: str, redis_url: str, redis_prefix: str
) -> None:
    client = aredis.Redis.from_url(redis_url)
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        assert await current_mode(client, redis_prefix, "users") is Mode.LEGACY
        with pytest.raises(IllegalTransitionError, match="flip it to shadow first"):
            await change_mode(conn, client, redis_prefix, "users", Mode.POSTGRES)
        with pytest.raises(IllegalTransitionError, match="already"):
            await change_mode(conn, client, redis_prefix, "users", Mode.LEGACY)
        snapshot = {"verify": {"pass": True, "bound": 0.0009}}
        t1 = await change_mode(conn, client, redis_prefix, "users", Mode.SHADOW, actor="ana",
                               reason="verify clean for a week", readiness=snapshot)  # fmt: skip
        t2 = await change_mode(conn, client, redis_prefix, "users", Mode.POSTGRES, actor="ana")
        t3 = await change_mode(conn, client, redis_prefix, "users", Mode.LEGACY, actor="bo",
                               reason="3 a.m. rollback")  # fmt: skip
        await change_mode(conn, client, redis_prefix, "charts", Mode.SHADOW)
        await change_mode(conn, client, redis_prefix, "charts", Mode.POSTGRES)
        with pytest.raises(IllegalTransitionError, match="roll it back"):
            await change_mode(conn, client, redis_prefix, "charts", Mode.SHADOW)
        cur = await conn.execute(
            "select id, entity, from_mode, to_mode, actor, reason, readiness from "
            "dualsync.cutover_log where entity = 'users' order by id"
        )
        rows = await cur.fetchall()
    assert [(r[2], r[3], r[4]) for r in rows] == [
        ("legacy", "shadow", "ana"), ("shadow", "postgres", "ana"), ("postgres", "legacy", "bo"),
    ]  # fmt: skip
    assert [r[0] for r in rows] == [t1.audit_id, t2.audit_id, t3.audit_id]
    assert rows[0][6] == snapshot
    assert rows[2][5] == "3 a.m. rollback"
    await client.aclose()


async def _modes(readers: list[ReadPath], entity: str) -> set[Mode]:
    return set(await asyncio.gather(*(r.mode(entity) for r in readers)))


async def test_twenty_clients_follow_a_flip_and_a_rollback_within_a_second(
    db: str, redis_url: str, redis_prefix: str
) -> None:
    client = aredis.Redis.from_url(redis_url)
    readers = [ReadPath(aredis.Redis.from_url(redis_url), prefix=redis_prefix, ttl_s=30)
               for _ in range(20)]  # fmt: skip
    for r in readers:
        await r.start()
    seen = await _modes(readers, "users")
    assert seen == {Mode.LEGACY}  # cached for 30 s now
    await asyncio.sleep(0.2)  # subscribed
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        for target in (Mode.SHADOW, Mode.LEGACY):
            t0 = time.monotonic()
            await change_mode(conn, client, redis_prefix, "users", target)
            while await _modes(readers, "users") != {target}:
                assert time.monotonic() - t0 < 1.0, "a client still reads the old mode"
                await asyncio.sleep(0.01)
    for r in readers:
        await r.aclose()
        await r._redis.aclose()
    await client.aclose()


async def test_with_redis_gone_a_client_keeps_its_last_mode(
    db: str, redis_prefix: str, tmp_path: Path
) -> None:
    server = EmbeddedRedis(data_dir=tmp_path / "r")
    server.start()
    client = aredis.Redis.from_url(server.url, socket_connect_timeout=0.2, socket_timeout=0.2)
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        await change_mode(conn, client, redis_prefix, "orders", Mode.SHADOW)
        await change_mode(conn, client, redis_prefix, "orders", Mode.POSTGRES)
    path = ReadPath(client, prefix=redis_prefix, ttl_s=0.05)
    assert await path.mode("orders") is Mode.POSTGRES

    async def legacy(key: str) -> str:
        return f"legacy:{key}"

    async def postgres(key: str) -> str:
        return f"postgres:{key}"

    assert await path.read("orders", "o1", legacy, postgres) == "postgres:o1"
    server.stop()
    await asyncio.sleep(0.1)  # past the TTL: the client asks Redis, which does not answer
    assert await path.mode("orders") is Mode.POSTGRES  # never switches store on its own
    assert await path.read("orders", "o1", legacy, postgres) == "postgres:o1"
    assert await path.mode("never-seen") is Mode.LEGACY
    await client.aclose()
    server.close()


async def test_a_client_with_a_short_socket_timeout_misses_no_flip(
    db: str, redis_url: str, redis_prefix: str
) -> None:
    """A quiet pub/sub connection is not an outage: with socket_timeout=0.2 the listener
    used to treat each quiet 0.2 s as one, resubscribe, and lose the flips in between."""
    client = aredis.Redis.from_url(redis_url)
    quick = aredis.Redis.from_url(redis_url, socket_connect_timeout=0.2, socket_timeout=0.2)
    path = ReadPath(quick, prefix=redis_prefix, ttl_s=60)
    await path.start()
    assert await path.mode("users") is Mode.LEGACY  # cached for 60 s: only messages help
    await asyncio.sleep(0.3)
    async with await psycopg.AsyncConnection.connect(db, autocommit=True) as conn:
        for target in [Mode.SHADOW, Mode.LEGACY] * 5:
            await asyncio.sleep(0.45)  # quiet longer than the socket timeout
            t0 = time.monotonic()
            await change_mode(conn, client, redis_prefix, "users", target)
            while await path.mode("users") is not target:
                assert time.monotonic() - t0 < 1.0, f"the flip to {target} was missed"
                await asyncio.sleep(0.01)
    await path.aclose()
    await quick.aclose()
    await client.aclose()


async def test_an_unknown_mode_keeps_the_last_one_and_says_so(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = aredis.Redis.from_url(redis_url)
    key, channel = f"{redis_prefix}:readpath", f"{redis_prefix}:readpath:changes"
    await client.hset(key, "users", "shadow")
    path = ReadPath(client, prefix=redis_prefix, ttl_s=0.05)
    await path.start()
    await asyncio.sleep(0.2)
    assert await path.mode("users") is Mode.SHADOW
    await client.hset(key, "users", "postgress")  # a hand edit's typo
    await asyncio.sleep(0.1)
    assert await path.mode("users") is Mode.SHADOW
    await client.publish(channel, b'{"entity": "users", "mode": "Postgres"}')
    await client.publish(channel, b"not json")
    await asyncio.sleep(0.2)
    assert await path.mode("users") is Mode.SHADOW
    assert path._listener is not None
    assert not path._listener.done()  # the listener lives on
    await path.aclose()
    await client.aclose()
