"""The one Redis client factory: single server or Redis Cluster, chosen by URL scheme."""

from __future__ import annotations

import pytest
import redis.asyncio as aredis

from dualsync.errors import ConfigError
from dualsync.ops.embedded import free_port
from dualsync.ops.services import open_services
from dualsync.redisconn import cluster_url, connect, is_cluster, reachable
from dualsync.settings import Settings


async def test_plain_url_gives_a_single_server_client(redis_url: str) -> None:
    client = connect(redis_url)
    try:
        assert isinstance(client, aredis.Redis)
        assert not is_cluster(client)
        assert await client.ping()
    finally:
        await client.aclose()


async def test_cluster_url_gives_a_cluster_client_with_every_startup_node() -> None:
    client = connect("redis+cluster://u:p%40ss@127.0.0.1:7000,127.0.0.1:7001")
    try:
        assert isinstance(client, aredis.RedisCluster)
        assert is_cluster(client)
        assert [(n.host, n.port) for n in client.nodes_manager.startup_nodes.values()] == [
            ("127.0.0.1", 7000),
            ("127.0.0.1", 7001),
        ]
        assert client.connection_kwargs["password"] == "p@ss"
        assert client.connection_kwargs["username"] == "u"
    finally:
        await client.aclose()


def test_cluster_url_rewrites_plain_schemes_only() -> None:
    assert cluster_url("redis://h:1") == "redis+cluster://h:1"
    assert cluster_url("rediss://h:1") == "rediss+cluster://h:1"
    assert cluster_url("redis+cluster://h:1") == "redis+cluster://h:1"
    with pytest.raises(ConfigError, match="redis:// or rediss://"):
        cluster_url("unix:///tmp/redis.sock")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://127.0.0.1", "not host:port"),
        ("redis+cluster://127.0.0.1:7000,nohost", "not host:port"),
        ("redis+cluster://127.0.0.1:7000/3", "only database 0"),
    ],
)
def test_bad_cluster_urls_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        connect(url)


def test_reachable_says_no_for_nobody_listening() -> None:
    port = free_port()
    assert not reachable(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    assert not reachable(f"redis+cluster://127.0.0.1:{port}", timeout=0.2)


@pytest.mark.cluster
def test_services_use_the_cluster_with_the_cluster_setting(redis_cluster_url: str) -> None:
    plain = redis_cluster_url.replace("redis+cluster://", "redis://").split(",")[0]
    settings = Settings(redis_url=plain, redis_cluster=True)
    with open_services(settings, need_pg=False) as svc:
        assert svc.redis_url == cluster_url(plain)
        assert not svc.redis_embedded
    assert reachable(redis_cluster_url)
