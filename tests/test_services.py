"""The session's real services answer, and per-test isolation holds."""

from __future__ import annotations

import psycopg
import redis.asyncio as aredis


async def test_postgres_is_real(pg_conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    cur = await pg_conn.execute("select current_database(), version()")
    row = await cur.fetchone()
    assert row is not None
    assert str(row[0]).startswith("t_test_services_")
    assert "PostgreSQL" in str(row[1])


async def test_vector_extension(
    pg_conn: psycopg.AsyncConnection[tuple[object, ...]], require_vector: None
) -> None:
    await pg_conn.execute("create extension if not exists vector")
    cur = await pg_conn.execute("select '[1,2,3]'::vector <=> '[1,2,4]'::vector")
    row = await cur.fetchone()
    assert row is not None
    assert 0 < float(row[0]) < 1  # type: ignore[arg-type]  # psycopg rows are untyped tuples


async def test_redis_is_real(redis_client: aredis.Redis, redis_prefix: str) -> None:
    info = await redis_client.info("server")
    major, minor = (int(x) for x in str(info["redis_version"]).split(".")[:2])
    assert (major, minor) >= (6, 2)
    await redis_client.xadd(f"{redis_prefix}:events:{{0}}", {"a": "1"})
    assert await redis_client.xlen(f"{redis_prefix}:events:{{0}}") == 1
